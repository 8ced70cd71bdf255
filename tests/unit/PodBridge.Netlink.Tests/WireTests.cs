using PodBridge.Netlink;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Tests;

public class WriterTests
{
    [Theory]
    [InlineData("a", new byte[] { 0x06, 0x00, 0x07, 0x00, (byte)'a', 0x00, 0x00, 0x00 })]
    [InlineData("ab", new byte[] { 0x07, 0x00, 0x07, 0x00, (byte)'a', (byte)'b', 0x00, 0x00 })]
    [InlineData("abc", new byte[] { 0x08, 0x00, 0x07, 0x00, (byte)'a', (byte)'b', (byte)'c', 0x00 })]
    [InlineData("abcd", new byte[] { 0x09, 0x00, 0x07, 0x00, (byte)'a', (byte)'b', (byte)'c', (byte)'d', 0x00, 0x00, 0x00, 0x00 })]
    public void StringAttribute_IsNulTerminatedAndZeroPadded(string value, byte[] expected)
    {
        Span<byte> buffer = stackalloc byte[64];
        buffer.Fill(0xAA);
        var w = new NetlinkWriter(buffer);
        w.WriteString(7, value);
        Assert.Equal(expected, w.Written.ToArray());
    }

    [Fact]
    public void RawAttribute_PaddingIsZeroedInADirtyBuffer()
    {
        Span<byte> buffer = stackalloc byte[64];
        buffer.Fill(0xAA);
        var w = new NetlinkWriter(buffer);
        w.WriteAttribute(1, [0x11, 0x22, 0x33, 0x44, 0x55]);
        w.WriteU8(2, 0x66);
        Assert.Equal(
            [
                0x09, 0x00, 0x01, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x00, 0x00, 0x00,
                0x05, 0x00, 0x02, 0x00, 0x66, 0x00, 0x00, 0x00,
            ],
            w.Written.ToArray());
    }

    [Fact]
    public void NestedScopes_BackPatchTheirLengthsIncludingInnerPadding()
    {
        Span<byte> buffer = stackalloc byte[64];
        buffer.Fill(0xAA);
        var w = new NetlinkWriter(buffer);
        using (w.BeginNested(1))
        {
            w.WriteU8(2, 0x01);
            using (w.BeginNested(3, nestedFlag: false))
                w.WriteU32(4, 0x0a0b0c0d);
            using (w.BeginNested(5)) { }
        }
        Assert.Equal(
            [
                0x1c, 0x00, 0x01, 0x80,                         // outer, len 28, NLA_F_NESTED
                0x05, 0x00, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, //   u8 + pad
                0x0c, 0x00, 0x03, 0x00,                         //   inner, len 12, no flag
                0x08, 0x00, 0x04, 0x00, 0x0d, 0x0c, 0x0b, 0x0a, //     u32 host order
                0x04, 0x00, 0x05, 0x80,                         //   empty nest, len 4
            ],
            w.Written.ToArray());
    }

    [Fact]
    public void Finish_WritesTheMessageLength()
    {
        Span<byte> buffer = stackalloc byte[64];
        var w = new NetlinkWriter(buffer);
        w.WriteHeader(MessageType.GetLink, MessageFlags.Request);
        w.WriteU32(1, 5);
        Assert.Equal(24, w.Finish());
        Assert.Equal([0x18, 0x00, 0x00, 0x00, 0x12, 0x00, 0x01, 0x00], buffer[..8].ToArray());
    }

    [Fact]
    public void Overflow_ThrowsInsteadOfWritingPastTheBuffer()
    {
        var buffer = new byte[12];
        var error = Assert.Throws<InvalidOperationException>(() =>
        {
            var w = new NetlinkWriter(buffer);
            w.WriteU32(1, 1);
            w.WriteString(2, "toolong");
        });
        Assert.Contains("12 bytes", error.Message);
    }
}

public class ReaderTests
{
    [Fact]
    public void Reader_WalksMessagesAndAttributes_OfARecordedAddressDump()
    {
        var datagram = KernelReplies.AddressDumpPart1;
        var reader = new NetlinkReader(datagram);
        var types = new List<(ushort Type, ushort Flags, int Length)>();
        var attributeTypes = new List<ushort>();
        while (reader.TryRead(out var message))
        {
            types.Add((message.Type, message.Flags, message.Payload.Length));
            message.ReadFixed<IfAddrMsg>(out var attributes);
            while (attributes.TryRead(out var a)) attributeTypes.Add(a.Type);
        }
        Assert.Equal([(MessageType.NewAddr, MessageFlags.Multi, 60), (MessageType.NewAddr, MessageFlags.Multi, 64)], types);
        // IFA_ADDRESS, IFA_LOCAL, IFA_LABEL, IFA_FLAGS, IFA_CACHEINFO | IFA_ADDRESS, IFA_CACHEINFO, IFA_FLAGS, IFA_PROTO
        Assert.Equal([1, 2, 3, 8, 6, 1, 6, 8, 11], attributeTypes);
    }

    [Fact]
    public void Reader_RejectsAMessageLongerThanTheDatagram()
    {
        var datagram = KernelReplies.AddressDumpPart1[..40];
        var error = Assert.Throws<NetlinkException>(() =>
        {
            var reader = new NetlinkReader(datagram);
            while (reader.TryRead(out _)) { }
        });
        Assert.Equal(Errno.EBADMSG, error.Errno);
        Assert.Contains("nlmsg_len 76", error.Message);
    }

    [Fact]
    public void Reader_RejectsAnAttributeLongerThanItsMessage()
    {
        byte[] payload = [0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00];
        var error = Assert.Throws<NetlinkException>(() =>
        {
            var attributes = new AttributeReader(payload);
            while (attributes.TryRead(out _)) { }
        });
        Assert.Equal(Errno.EBADMSG, error.Errno);
    }

    [Fact]
    public void Reader_RejectsAHeaderShorterThan16Bytes()
    {
        byte[] datagram = [0x08, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0];
        Assert.Throws<NetlinkException>(() =>
        {
            var reader = new NetlinkReader(datagram);
            while (reader.TryRead(out _)) { }
        });
    }

    [Fact]
    public void ParseLink_OfARecordedVethReply()
    {
        var reader = new NetlinkReader(KernelReplies.VethGetLink);
        Assert.True(reader.TryRead(out var message));
        var link = RtParsers.Link(in message);
        Assert.NotNull(link);
        Assert.Equal(2, link.Index);
        Assert.Equal("eth0", link.Name);
        Assert.Equal("veth", link.Kind);
        Assert.Equal("02:42:ac:11:00:02", link.MacString);
        Assert.Equal(1400, link.Mtu);
        Assert.False(link.IsUp);
        Assert.False(link.Promisc);
        Assert.Null(link.MasterIndex);
        Assert.Equal(2, link.ParentIndex);     // IFLA_LINK: the host end's ifindex in the other namespace
        Assert.Equal(0, link.LinkNetNsId);     // IFLA_LINK_NETNSID
        Assert.False(reader.TryRead(out _));
    }

    [Fact]
    public void ParseAddress_PrefersLocalAndReadsExtendedFlags()
    {
        var reader = new NetlinkReader(KernelReplies.AddressDumpPart1);
        var addresses = new List<AddressInfo>();
        while (reader.TryRead(out var message)) addresses.Add(RtParsers.Address(in message)!);
        Assert.Equal(
            [
                new AddressInfo(1, System.Net.IPAddress.Loopback, 8, 254, 0x80),
                new AddressInfo(1, System.Net.IPAddress.IPv6Loopback, 128, 254, 0x80),
            ],
            addresses);
    }
}
