using System.Net;
using System.Net.Sockets;
using PodBridge.Netlink;
using PodBridge.Netlink.Wire;
using static PodBridge.Netlink.Tests.ReplayTransport;

namespace PodBridge.Netlink.Tests;

/// <summary>The socket's receive loop against recorded kernel datagrams (no kernel involved).</summary>
public class ReceiveLoopTests
{
    private static readonly IPAddress Lo4 = IPAddress.Loopback;
    private static readonly IPAddress Lo6 = IPAddress.IPv6Loopback;

    [Fact]
    public void Dump_ReadsEveryDatagramUntilDone()
    {
        var transport = new ReplayTransport().Reply(KernelReplies.AddressDumpPart1, KernelReplies.AddressDumpDone);
        using var socket = new RtNetlinkSocket(transport, lastSequence: 6);

        var addresses = socket.ListAddresses();

        Assert.Equal([Lo4, Lo6], addresses.Select(a => a.Address));
        Assert.Equal(7u, transport.SentSeq(0));
        Assert.Equal(2, transport.Receives);
    }

    [Fact]
    public void Dump_FiltersOnTheClientToo()
    {
        var transport = new ReplayTransport().Reply(KernelReplies.AddressDumpPart1, KernelReplies.AddressDumpDone);
        using var socket = new RtNetlinkSocket(transport, lastSequence: 6);

        var addresses = socket.ListAddresses(index: 1, family: AddressFamily.InterNetworkV6);

        Assert.Equal([Lo6], addresses.Select(a => a.Address));
        // ifa_family AF_INET6 and ifa_index 1 went into the header for the kernel to filter.
        Assert.Equal([0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00], transport.Sent[0][16..24]);
    }

    [Fact]
    public void Error_CarriesErrnoNameAndExtendedAckText()
    {
        var transport = new ReplayTransport().Reply(KernelReplies.DuplicateAddressError);
        using var socket = new RtNetlinkSocket(transport, lastSequence: 7);

        var error = Assert.Throws<NetlinkException>(() => socket.AddAddress(1, Lo4, 8, noDad: false));

        Assert.Equal(Errno.EEXIST, error.Errno);
        Assert.Equal("ipv4: Address already assigned", error.KernelMessage);
        Assert.Equal("RTM_NEWADDR 127.0.0.1/8 on ifindex 1: EEXIST (17): ipv4: Address already assigned", error.Message);
    }

    [Fact]
    public void Error_WithTheRequestEchoedInFull_StillFindsTheText()
    {
        // Without NETLINK_CAP_ACK honoured, the kernel echoes the whole request before the TLVs.
        var echoed = new byte[40];
        BitConverter.GetBytes(40u).CopyTo(echoed, 0);
        var payload = BitConverter.GetBytes(-Errno.EINVAL).Concat(echoed).Concat(Tlv(ErrorAttr.Msg, "Invalid prefix for given prefix length")).ToArray();
        var transport = new ReplayTransport().Reply(Message(MessageType.Error, MessageFlags.AckTlvs, 1, KernelReplies.PortId, payload));
        using var socket = new RtNetlinkSocket(transport);

        var error = Assert.Throws<NetlinkException>(() => socket.AddRoute(new RouteSpec(IPAddress.Parse("10.1.2.3"), 24, null, 2)));

        Assert.Equal(Errno.EINVAL, error.Errno);
        Assert.Equal("RTM_NEWROUTE 10.1.2.3/24 dev ifindex 2: EINVAL (22): Invalid prefix for given prefix length", error.Message);
    }

    [Fact]
    public void Error_WithoutExtendedAck_EndsAfterTheErrno()
    {
        var transport = new ReplayTransport().Reply(Ack(1, -Errno.EEXIST));
        using var socket = new RtNetlinkSocket(transport);

        var error = Assert.Throws<NetlinkException>(() => socket.CreateBridge("cni0", null));

        Assert.Equal("RTM_NEWLINK bridge cni0: EEXIST (17)", error.Message);
        Assert.Null(error.KernelMessage);
    }

    [Fact]
    public void Ack_Zero_IsSuccess_AndEachRequestGetsTheNextSequence()
    {
        var transport = new ReplayTransport().Reply(Ack(1, 0)).Reply(Ack(2, 0)).Reply(Ack(3, 0));
        using var socket = new RtNetlinkSocket(transport);

        socket.SetLinkUp(4);
        socket.SetMaster(4, 3);
        socket.SetBridgePortHairpin(4, true);

        Assert.Equal([1u, 2u, 3u], Enumerable.Range(0, 3).Select(transport.SentSeq));
        Assert.Equal(3, transport.Receives);
    }

    [Fact]
    public void StaleRepliesAndForeignPorts_AreSkipped()
    {
        var transport = new ReplayTransport().Reply(
            Ack(4, -Errno.EEXIST),                          // a late answer to an earlier, abandoned request
            Ack(5, -Errno.EPERM, pid: KernelReplies.PortId + 1), // right seq, someone else's port
            Ack(5, 0));
        using var socket = new RtNetlinkSocket(transport, lastSequence: 4);

        socket.SetMtu(2, 1500);

        Assert.Equal(3, transport.Receives);
    }

    [Fact]
    public void GetLink_Enodev_IsNull_OtherErrorsThrow()
    {
        var transport = new ReplayTransport().Reply(Ack(1, -Errno.ENODEV)).Reply(Ack(2, -Errno.EPERM, "denied"));
        using var socket = new RtNetlinkSocket(transport);

        Assert.Null(socket.GetLink("nope0"));
        var error = Assert.Throws<NetlinkException>(() => socket.GetLink(7));
        Assert.Equal("RTM_GETLINK ifindex 7: EPERM (1): denied", error.Message);
    }

    [Fact]
    public void GetLink_ParsesTheSingleReply()
    {
        var transport = new ReplayTransport(portId: 0x57da).Reply(Restamp(KernelReplies.VethGetLink, 1));
        using var socket = new RtNetlinkSocket(transport);

        var link = socket.GetLink("eth0");

        Assert.Equal("eth0", link?.Name);
        Assert.Equal(1, transport.Receives);
    }

    [Fact]
    public void GetLink_ReplyAddressedToAnotherPort_IsNotTakenAsOurs()
    {
        var transport = new ReplayTransport(portId: 0x1234).Reply(Restamp(KernelReplies.VethGetLink, 1));
        using var socket = new RtNetlinkSocket(transport);

        // The loop skips it and keeps waiting; the replay then runs dry.
        Assert.Throws<InvalidOperationException>(() => socket.GetLink("eth0"));
    }

    [Fact]
    public void DeleteLinkByName_ReportsAbsenceWithoutThrowing()
    {
        var transport = new ReplayTransport().Reply(Ack(1, -Errno.ENODEV)).Reply(Ack(2, 0));
        using var socket = new RtNetlinkSocket(transport);

        Assert.False(socket.DeleteLink("gone0"));
        Assert.True(socket.DeleteLink("here0"));
    }

    [Fact]
    public void InterruptedDump_IsRetriedWithANewSequence()
    {
        var transport = new ReplayTransport().Reply(
            Restamp(KernelReplies.AddressDumpPart1, 7, MessageFlags.DumpInterrupted),
            Restamp(KernelReplies.AddressDumpDone, 7, MessageFlags.DumpInterrupted)).Reply(
            Restamp(KernelReplies.AddressDumpPart1, 8),
            Restamp(KernelReplies.AddressDumpDone, 8));
        using var socket = new RtNetlinkSocket(transport, lastSequence: 6);

        var addresses = socket.ListAddresses();

        Assert.Equal(2, addresses.Count); // the first, inconsistent pass is discarded, not appended
        Assert.Equal([7u, 8u], [transport.SentSeq(0), transport.SentSeq(1)]);
    }

    [Fact]
    public void DumpInterruptedEveryTime_FailsWithEintr()
    {
        var transport = new ReplayTransport();
        for (uint seq = 1; seq <= RtNetlinkSocket.MaxAttempts; seq++)
            transport.Reply(Restamp(KernelReplies.AddressDumpDone, seq, MessageFlags.DumpInterrupted));
        using var socket = new RtNetlinkSocket(transport);

        var error = Assert.Throws<NetlinkException>(() => socket.ListAddresses());

        Assert.Equal(Errno.EINTR, error.Errno);
        Assert.Equal(RtNetlinkSocket.MaxAttempts, transport.Sent.Count);
    }

    [Fact]
    public void DumpFailure_InDone_IsReportedWithItsText()
    {
        var payload = BitConverter.GetBytes(-Errno.ENODEV).Concat(Tlv(ErrorAttr.Msg, "no such device")).ToArray();
        var transport = new ReplayTransport().Reply(Message(MessageType.Done, MessageFlags.Multi | MessageFlags.AckTlvs, 1, KernelReplies.PortId, payload));
        using var socket = new RtNetlinkSocket(transport);

        var error = Assert.Throws<NetlinkException>(() => socket.ListAddresses(index: 99));

        Assert.Equal("RTM_GETADDR dump: ENODEV (19): no such device", error.Message);
    }

    [Fact]
    public void TruncatedDatagram_DrainsTheRestGrowsTheBufferAndRetries()
    {
        var transport = new ReplayTransport().Reply(
            KernelReplies.AddressDumpPart1,                 // 156 bytes into a 64-byte buffer: MSG_TRUNC
            KernelReplies.AddressDumpDone)                  // still queued; must be drained, not mistaken for the retry's end
            .Reply(
            Restamp(KernelReplies.AddressDumpPart1, 8),
            Restamp(KernelReplies.AddressDumpDone, 8));
        using var socket = new RtNetlinkSocket(transport, receiveBufferSize: 64, lastSequence: 6);

        var addresses = socket.ListAddresses();

        Assert.Equal(2, addresses.Count);
        Assert.Equal(2, transport.Sent.Count);
        Assert.True(socket.ReceiveBufferSize >= KernelReplies.AddressDumpPart1.Length);
    }

    [Fact]
    public void TruncatedAck_IsAnErrorNotARetry()
    {
        var transport = new ReplayTransport().Reply(Ack(1, -Errno.EINVAL, new string('x', 200)));
        using var socket = new RtNetlinkSocket(transport, receiveBufferSize: 64);

        var error = Assert.Throws<NetlinkException>(() => socket.SetLinkUp(1));

        Assert.Equal(Errno.EMSGSIZE, error.Errno);
        Assert.Single(transport.Sent); // a change is never sent twice
    }

    [Fact]
    public void MalformedReply_IsEbadmsg_AndTheSocketStaysUsable()
    {
        var broken = Restamp(KernelReplies.AddressDumpPart1, 1);
        broken[0] = 0xff; // nlmsg_len 255 > the 156-byte datagram
        var transport = new ReplayTransport()
            .Reply(broken, Restamp(KernelReplies.AddressDumpDone, 1))
            .Reply(Ack(2, 0));
        using var socket = new RtNetlinkSocket(transport);

        var error = Assert.Throws<NetlinkException>(() => socket.ListAddresses());
        Assert.Equal(Errno.EBADMSG, error.Errno);

        socket.SetLinkUp(3); // the rest of the broken dump was drained, so this reads its own ack
        Assert.Equal(3, transport.Receives);
    }

    [Fact]
    public void InvalidArguments_AreRejectedBeforeSending()
    {
        var transport = new ReplayTransport();
        using var socket = new RtNetlinkSocket(transport);

        Assert.Throws<ArgumentException>(() => socket.GetLink("sixteen-chars-xx"));
        Assert.Throws<ArgumentException>(() => socket.GetLink(""));
        Assert.Throws<ArgumentOutOfRangeException>(() => socket.GetLink(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => socket.AddAddress(1, Lo4, 33, noDad: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => socket.SetMtu(1, 0));
        Assert.Throws<ArgumentException>(() => socket.AddRoute(new RouteSpec(IPAddress.Any, 0, Lo6, 1)));
        Assert.Empty(transport.Sent);
    }

    [Fact]
    public void Dispose_ClosesTheTransport_AndLaterUseThrows()
    {
        var transport = new ReplayTransport();
        var socket = new RtNetlinkSocket(transport);
        socket.Dispose();
        Assert.True(transport.Disposed);
        Assert.Throws<ObjectDisposedException>(() => socket.ListLinks());
    }
}
