using PodBridge.Netlink;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Tests;

/// <summary>Exact bytes of the AF_BRIDGE requests (port options, VLANs); see RequestBytesTests for the conventions.</summary>
public class BridgeRequestBytesTests
{
    private static byte[] Build(Func<Memory<byte>, int> build)
    {
        var buffer = new byte[1024];
        Array.Fill(buffer, (byte)0xAA);
        var length = build(buffer);
        return buffer[..length];
    }

    [Fact]
    public void SetBridgePort_WritesHairpinAndIsolationInOneProtInfo()
    {
        var actual = Build(b => RtRequests.SetBridgePort(b.Span, 5, hairpin: true, isolated: true));
        byte[] expected =
        [
            0x34, 0x00, 0x00, 0x00,                         // nlmsg_len 52
            0x13, 0x00,                                     // RTM_SETLINK
            0x05, 0x00,                                     // NLM_F_REQUEST|ACK
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, // ifinfomsg: AF_BRIDGE, index 5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x14, 0x00, 0x0c, 0x80,                         // IFLA_PROTINFO | NLA_F_NESTED, len 20
            0x05, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00, //   IFLA_BRPORT_MODE 1 (hairpin) + 3 pad
            0x05, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, //   IFLA_BRPORT_ISOLATED (33) 1 + 3 pad
        ];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void SetIsolated_IsAnAfBridgeSetLinkWithNestedProtInfo()
    {
        var actual = Build(b => RtRequests.SetIsolated(b.Span, 5, on: true));
        byte[] expected =
        [
            0x2c, 0x00, 0x00, 0x00,                         // nlmsg_len 44
            0x13, 0x00,                                     // RTM_SETLINK
            0x05, 0x00,                                     // NLM_F_REQUEST|ACK
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, // ifinfomsg: AF_BRIDGE, index 5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x0c, 0x00, 0x0c, 0x80,                         // IFLA_PROTINFO | NLA_F_NESTED, len 12
            0x05, 0x00, 0x21, 0x00, 0x01, 0x00, 0x00, 0x00, //   IFLA_BRPORT_ISOLATED (33) 1 + 3 pad
        ];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void SetVlanFiltering_IsABridgeChangelinkWithKindAndData()
    {
        var actual = Build(b => RtRequests.SetVlanFiltering(b.Span, 3, on: true));
        byte[] expected =
        [
            0x3c, 0x00, 0x00, 0x00,                         // nlmsg_len 60
            0x10, 0x00,                                     // RTM_NEWLINK
            0x05, 0x00,                                     // NLM_F_REQUEST|ACK (no CREATE: changelink)
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC, index 3
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x1c, 0x00, 0x12, 0x80,                         // IFLA_LINKINFO | NLA_F_NESTED, len 28
            0x0a, 0x00, 0x01, 0x00, (byte)'b', (byte)'r', (byte)'i', (byte)'d', (byte)'g', (byte)'e', 0x00, 0x00, // IFLA_INFO_KIND "bridge"
            0x0c, 0x00, 0x02, 0x80,                         //   IFLA_INFO_DATA | NLA_F_NESTED, len 12
            0x05, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, //     IFLA_BR_VLAN_FILTERING 1 + 3 pad
        ];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void NewBridge_WithVlanFiltering_CarriesItInTheCreateRequest()
    {
        var actual = Build(b => RtRequests.NewBridge(b.Span, "br0", null, default, vlanFiltering: true));
        byte[] expected =
        [
            0x44, 0x00, 0x00, 0x00,                         // nlmsg_len 68
            0x10, 0x00,                                     // RTM_NEWLINK
            0x05, 0x06,                                     // NLM_F_REQUEST|ACK|EXCL|CREATE
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_UNSPEC, index 0
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x03, 0x00, (byte)'b', (byte)'r', (byte)'0', 0x00, // IFLA_IFNAME "br0"
            0x1c, 0x00, 0x12, 0x80,                         // IFLA_LINKINFO | NLA_F_NESTED, len 28
            0x0a, 0x00, 0x01, 0x00, (byte)'b', (byte)'r', (byte)'i', (byte)'d', (byte)'g', (byte)'e', 0x00, 0x00,
            0x0c, 0x00, 0x02, 0x80,                         //   IFLA_INFO_DATA
            0x05, 0x00, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, //     IFLA_BR_VLAN_FILTERING 1
        ];
        Assert.Equal(expected, actual);
    }

    [Theory]
    [InlineData(true, 0x13)]  // RTM_SETLINK adds
    [InlineData(false, 0x11)] // RTM_DELLINK removes
    public void BridgeVlans_PvidUntaggedAccessVlan_AndATaggedRange(bool add, byte type)
    {
        var actual = Build(b => RtRequests.BridgeVlans(b.Span, 5, add,
            [VlanRange.One(10, pvid: true, untagged: true), new VlanRange(100, 200)]));
        byte[] expected =
        [
            0x44, 0x00, 0x00, 0x00,                         // nlmsg_len 68
            type, 0x00,
            0x05, 0x00,                                     // NLM_F_REQUEST|ACK
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, // ifinfomsg: AF_BRIDGE, index 5
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x24, 0x00, 0x1a, 0x80,                         // IFLA_AF_SPEC | NLA_F_NESTED, len 36
            0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, //   IFLA_BRIDGE_FLAGS BRIDGE_FLAGS_MASTER + 2 pad
            0x08, 0x00, 0x02, 0x00, 0x06, 0x00, 0x0a, 0x00, //   IFLA_BRIDGE_VLAN_INFO PVID|UNTAGGED, vid 10
            0x08, 0x00, 0x02, 0x00, 0x08, 0x00, 0x64, 0x00, //   IFLA_BRIDGE_VLAN_INFO RANGE_BEGIN, vid 100
            0x08, 0x00, 0x02, 0x00, 0x10, 0x00, 0xc8, 0x00, //   IFLA_BRIDGE_VLAN_INFO RANGE_END, vid 200
        ];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void DumpBridgeVlans_AsksForEveryPortsVlans()
    {
        var actual = Build(b => RtRequests.DumpBridgeVlans(b.Span));
        byte[] expected =
        [
            0x28, 0x00, 0x00, 0x00,                         // nlmsg_len 40
            0x12, 0x00,                                     // RTM_GETLINK
            0x01, 0x03,                                     // NLM_F_REQUEST|NLM_F_DUMP
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ifinfomsg: AF_BRIDGE
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x08, 0x00, 0x1d, 0x00, 0x02, 0x00, 0x00, 0x00, // IFLA_EXT_MASK RTEXT_FILTER_BRVLAN
        ];
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void ParseBridgeVlans_ExpandsRangesAndReadsFlags()
    {
        // An AF_BRIDGE RTM_NEWLINK as br_fill_ifinfo writes it for RTEXT_FILTER_BRVLAN (IFLA_AF_SPEC without the nested flag).
        byte[] datagram =
        [
            0x50, 0x00, 0x00, 0x00, 0x10, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // RTM_NEWLINK, NLM_F_MULTI
            0x07, 0x00, 0x01, 0x00, 0x05, 0x00, 0x00, 0x00, 0x43, 0x10, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, // AF_BRIDGE, index 5
            0x0a, 0x00, 0x03, 0x00, (byte)'v', (byte)'e', (byte)'t', (byte)'h', (byte)'0', 0x00, 0x00, 0x00, // IFLA_IFNAME
            0x24, 0x00, 0x1a, 0x00,                         // IFLA_AF_SPEC, len 36
            0x08, 0x00, 0x02, 0x00, 0x06, 0x00, 0x01, 0x00, //   vid 1 PVID|UNTAGGED
            0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0a, 0x00, //   vid 10
            0x08, 0x00, 0x02, 0x00, 0x08, 0x00, 0x64, 0x00, //   RANGE_BEGIN 100
            0x08, 0x00, 0x02, 0x00, 0x10, 0x00, 0x66, 0x00, //   RANGE_END 102
        ];
        var reader = new NetlinkReader(datagram);
        Assert.True(reader.TryRead(out var message));
        Assert.Equal(
            [
                new PortVlan(5, 1, Pvid: true, Untagged: true),
                new PortVlan(5, 10, false, false),
                new PortVlan(5, 100, false, false),
                new PortVlan(5, 101, false, false),
                new PortVlan(5, 102, false, false),
            ],
            RtParsers.BridgeVlans(in message)!);
    }
}
