using System.Runtime.InteropServices;
using PodBridge.Netlink.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace PodBridge.Netlink.Wire;

/// <summary>Datagram transport under <see cref="RtNetlinkSocket"/>; tests replace it with recorded kernel replies.</summary>
internal interface INetlinkTransport : IDisposable
{
    /// <summary>Our netlink port id; the kernel puts it in nlmsg_pid of every reply to us.</summary>
    uint PortId { get; }

    void Send(ReadOnlySpan<byte> request);

    /// <summary>
    /// Receives one datagram from the kernel into <paramref name="buffer"/> and returns its FULL length, which
    /// exceeds the buffer when the datagram was truncated (MSG_TRUNC). Returns -1 when <paramref name="dontWait"/>
    /// is set and nothing is queued.
    /// </summary>
    int Receive(Span<byte> buffer, bool dontWait);
}

/// <summary>An AF_NETLINK/NETLINK_ROUTE socket in the network namespace of the thread that created it.</summary>
internal sealed unsafe class KernelTransport : INetlinkTransport
{
    private readonly SafeFd _fd;

    private KernelTransport(SafeFd fd, uint portId)
    {
        _fd = fd;
        PortId = portId;
    }

    public uint PortId { get; }

    /// <summary>Opens the socket in the calling thread's network namespace.</summary>
    public static KernelTransport Open() => Open(NetlinkProtocol.Route);

    /// <summary>Opens a socket of <paramref name="protocol"/> (NETLINK_ROUTE, NETLINK_NETFILTER) in the calling thread's namespace.</summary>
    public static KernelTransport Open(int protocol)
    {
        var fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
        if (fd < 0) throw Errno.FromLast(new Operation("socket(AF_NETLINK)"));
        var handle = new SafeFd(fd);
        try
        {
            // Extended ack gives errors their kernel text; capped acks keep errors from echoing our request;
            // strict checking makes the kernel honour the filters we put in dump headers.
            SetOption(fd, NetlinkProtocol.ExtAck, "NETLINK_EXT_ACK");
            SetOption(fd, NetlinkProtocol.CapAck, "NETLINK_CAP_ACK");
            SetOption(fd, NetlinkProtocol.GetStrictCheck, "NETLINK_GET_STRICT_CHK");

            var address = new SockAddrNl { Family = Family.Netlink };
            if (bind(fd, (sockaddr*)&address, sizeof(SockAddrNl)) != 0)
                throw Errno.FromLast(new Operation("bind(AF_NETLINK)"));
            socklen_t length = sizeof(SockAddrNl);
            if (getsockname(fd, (sockaddr*)&address, &length) != 0)
                throw Errno.FromLast(new Operation("getsockname(AF_NETLINK)"));
            return new KernelTransport(handle, address.PortId);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private static void SetOption(int fd, int option, string name)
    {
        var on = 1;
        if (setsockopt(fd, NetlinkProtocol.SolNetlink, option, &on, sizeof(int)) != 0)
            throw Errno.FromLast(new Operation($"setsockopt({name})"));
    }

    public void Send(ReadOnlySpan<byte> request)
    {
        var fd = _fd.Fd;
        fixed (byte* p = request)
        {
            while (true)
            {
                long sent = send(fd, p, request.Length, 0);
                if (sent == request.Length) return;
                if (sent >= 0) throw new NetlinkException("send netlink request", Errno.EMSGSIZE, $"sent {sent} of {request.Length} bytes");
                var errno = Errno.Last;
                if (errno != Errno.EINTR) throw new NetlinkException("send netlink request", errno);
            }
        }
    }

    public int Receive(Span<byte> buffer, bool dontWait)
    {
        var fd = _fd.Fd;
        var flags = MSG_TRUNC | (dontWait ? MSG_DONTWAIT : 0);
        fixed (byte* p = buffer)
        {
            while (true)
            {
                SockAddrNl from = default;
                socklen_t fromLength = sizeof(SockAddrNl);
                long received = recvfrom(fd, p, buffer.Length, flags, (sockaddr*)&from, &fromLength);
                if (received < 0)
                {
                    var errno = Errno.Last;
                    if (errno == Errno.EINTR) continue;
                    if (dontWait && errno == Errno.EAGAIN) return -1;
                    // ENOBUFS: the socket overflowed and replies were dropped; the caller cannot trust the rest.
                    throw new NetlinkException("receive netlink reply", errno);
                }
                // Only the kernel (port 0) answers requests; any other sender is some process writing to our port.
                if (from.PortId != 0) continue;
                return (int)received;
            }
        }
    }

    public void Dispose() => _fd.Dispose();
}
