using PodBridge.Netlink;

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
}
