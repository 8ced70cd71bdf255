using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink;

/// <summary>
/// A NETLINK_ROUTE socket bound to one network namespace, with typed requests. Every request is one send and,
/// for everything but dumps, one receive. Not thread-safe: the request and receive buffers are reused.
/// </summary>
public sealed partial class RtNetlinkSocket : IDisposable
{
    /// <summary>
    /// The kernel sizes dump datagrams by the largest buffer we have offered, up to 32 KiB; offering that from
    /// the start means a dump of a few hundred links takes a handful of receives.
    /// </summary>
    internal const int DefaultReceiveBufferSize = 32 * 1024;
    private const int RequestBufferSize = 1024;
    /// <summary>Retries of a dump interrupted by concurrent changes (NLM_F_DUMP_INTR) or truncated by our buffer.</summary>
    internal const int MaxAttempts = 8;
    private const int IfNameMax = 15;        // IFNAMSIZ - 1

    private readonly INetlinkTransport _transport;
    private readonly byte[] _request = new byte[RequestBufferSize];
    private byte[] _receive;
    private uint _seq;
    private bool _disposed;

    internal RtNetlinkSocket(INetlinkTransport transport, int receiveBufferSize = DefaultReceiveBufferSize, uint lastSequence = 0)
    {
        _transport = transport;
        _seq = lastSequence;
        _receive = GC.AllocateUninitializedArray<byte>(receiveBufferSize);
    }

    /// <summary>A socket in the calling thread's network namespace.</summary>
    public static RtNetlinkSocket Open() => new(KernelTransport.Open());

    /// <summary>
    /// A socket in <paramref name="ns"/>. A netlink socket stays in the namespace it was created in, so only its
    /// creation runs on a thread inside <paramref name="ns"/>; all requests then run on the caller's thread.
    /// </summary>
    public static RtNetlinkSocket OpenIn(NetNsHandle ns) => new(ns.RunInside(KernelTransport.Open));

    internal static RtNetlinkSocket OpenIn(NetNsHandle ns, int receiveBufferSize) =>
        new(ns.RunInside(KernelTransport.Open), receiveBufferSize);

    internal int ReceiveBufferSize => _receive.Length;

    // ---- links ----

    /// <summary>The link named <paramref name="name"/>, or null when there is none (ENODEV).</summary>
    public LinkInfo? GetLink(string name)
    {
        CheckName(name);
        var length = RtRequests.GetLink(Request, name);
        return Exchange(length, new Operation("RTM_GETLINK", name), ReplyKind.Single, RtParsers.Link, null, Errno.ENODEV);
    }

    public LinkInfo? GetLink(int index)
    {
        CheckIndex(index);
        var length = RtRequests.GetLink(Request, index);
        return Exchange(length, new Operation("RTM_GETLINK", index: index), ReplyKind.Single, RtParsers.Link, null, Errno.ENODEV);
    }

    public IReadOnlyList<LinkInfo> ListLinks()
    {
        var links = new List<LinkInfo>();
        var length = RtRequests.DumpLinks(Request);
        Exchange(length, new Operation("RTM_GETLINK dump"), ReplyKind.Dump, RtParsers.Link, links);
        return links;
    }

    /// <summary>Creates a bridge; an existing link of that name fails with <see cref="Errno.EEXIST"/>.</summary>
    /// <param name="mac">
    /// IFLA_ADDRESS. A bridge created without one takes the lowest MAC of its ports and changes it as ports come
    /// and go; an explicit address stays put.
    /// </param>
    public void CreateBridge(string name, int? mtu, byte[]? mac = null, bool vlanFiltering = false)
    {
        CheckName(name);
        CheckMtu(mtu);
        if (mac is not null && mac.Length != 6) throw new ArgumentException("a MAC address has 6 bytes", nameof(mac));
        var length = RtRequests.NewBridge(Request, name, mtu, mac, vlanFiltering);
        Ack(length, new Operation("RTM_NEWLINK bridge", name));
    }

    /// <summary>
    /// Creates a veth pair in one request: <paramref name="name"/> in this socket's namespace, and
    /// <paramref name="peerName"/> directly inside <paramref name="peerNs"/>. Either name being taken fails with
    /// <see cref="Errno.EEXIST"/> and creates nothing.
    /// </summary>
    public void CreateVeth(string name, string peerName, NetNsHandle peerNs, int? mtu, byte[]? peerMac)
    {
        CheckName(name);
        CheckName(peerName);
        CheckMtu(mtu);
        ArgumentNullException.ThrowIfNull(peerNs);
        var added = false;
        try
        {
            // The fd number goes into the request; it must stay open until the kernel has read it.
            peerNs.DangerousAddRef(ref added);
            var length = RtRequests.NewVeth(Request, name, peerName, (int)peerNs.DangerousGetHandle(), mtu, peerMac);
            Ack(length, new Operation("RTM_NEWLINK veth", name, detail: peerName));
        }
        finally
        {
            if (added) peerNs.DangerousRelease();
        }
    }

    public void SetLinkUp(int index)
    {
        CheckIndex(index);
        Ack(RtRequests.SetFlags(Request, index, LinkFlags.Up, LinkFlags.Up), new Operation("RTM_SETLINK up", index: index));
    }

    /// <summary>
    /// Sets the link down: it stops sending and answering (no ARP/ND), its routes go. DEL does this before it releases
    /// the lease, so the address is out of use on the wire before anyone else can get it.
    /// </summary>
    public void SetLinkDown(int index)
    {
        CheckIndex(index);
        Ack(RtRequests.SetFlags(Request, index, 0, LinkFlags.Up), new Operation("RTM_SETLINK down", index: index));
    }

    /// <summary>Makes <paramref name="index"/> a port of the bridge <paramref name="masterIndex"/> (IFLA_MASTER).</summary>
    public void SetMaster(int index, int masterIndex)
    {
        CheckIndex(index);
        CheckIndex(masterIndex);
        Ack(RtRequests.SetMaster(Request, index, masterIndex), new Operation("RTM_SETLINK master", index: index));
    }

    public void SetMtu(int index, int mtu)
    {
        CheckIndex(index);
        CheckMtu(mtu);
        Ack(RtRequests.SetMtu(Request, index, mtu), new Operation("RTM_SETLINK mtu", index: index));
    }

    public void SetPromisc(int index, bool on)
    {
        CheckIndex(index);
        Ack(RtRequests.SetFlags(Request, index, on ? LinkFlags.Promisc : 0, LinkFlags.Promisc),
            new Operation("RTM_SETLINK promisc", index: index));
    }

    /// <summary>Hairpin mode of a bridge port (IFLA_BRPORT_MODE); the link must already be enslaved.</summary>
    public void SetBridgePortHairpin(int index, bool on)
    {
        CheckIndex(index);
        Ack(RtRequests.SetHairpin(Request, index, on), new Operation("RTM_SETLINK AF_BRIDGE hairpin", index: index));
    }

    public void DeleteLink(int index)
    {
        CheckIndex(index);
        Ack(RtRequests.DeleteLink(Request, index), new Operation("RTM_DELLINK", index: index));
    }

    /// <summary>Deletes a link by name; false when there is no such link (ENODEV).</summary>
    public bool DeleteLink(string name)
    {
        CheckName(name);
        // DEL runs this for links that are usually gone already: no exception on that path.
        return TryAck(RtRequests.DeleteLink(Request, name), new Operation("RTM_DELLINK", name), Errno.ENODEV);
    }

    // ---- addresses ----

    /// <summary>
    /// Adds an address; an identical one fails with <see cref="Errno.EEXIST"/>. <paramref name="noDad"/> skips
    /// IPv6 duplicate address detection (IFA_F_NODAD), so the address is usable at once, not "tentative".
    /// </summary>
    public void AddAddress(int index, IPAddress address, int prefixLength, bool noDad)
    {
        CheckIndex(index);
        CheckPrefix(address, prefixLength);
        Ack(RtRequests.NewAddress(Request, index, address, prefixLength, noDad),
            new Operation("RTM_NEWADDR", index: index, detail: address, prefixLength: prefixLength));
    }

    public IReadOnlyList<AddressInfo> ListAddresses(int? index = null, AddressFamily? family = null)
    {
        var filterFamily = family switch
        {
            null => Family.Unspec,
            AddressFamily.InterNetwork => Family.Inet,
            AddressFamily.InterNetworkV6 => Family.Inet6,
            _ => throw new ArgumentException($"address family {family} is not IPv4 or IPv6", nameof(family)),
        };
        if (index is { } i) CheckIndex(i);
        var addresses = new List<AddressInfo>();
        Exchange(RtRequests.DumpAddresses(Request, index ?? 0, filterFamily), new Operation("RTM_GETADDR dump"),
            ReplyKind.Dump, RtParsers.Address, addresses);
        addresses.RemoveAll(a => (index is { } ix && a.Index != ix) || (family is { } f && a.Address.AddressFamily != f));
        return addresses;
    }

    public void DeleteAddress(int index, IPAddress address, int prefixLength)
    {
        CheckIndex(index);
        CheckPrefix(address, prefixLength);
        Ack(RtRequests.DeleteAddress(Request, index, address, prefixLength),
            new Operation("RTM_DELADDR", index: index, detail: address, prefixLength: prefixLength));
    }

    // ---- routes ----

    /// <summary>Adds a unicast route to the main table (protocol boot); an existing one fails with <see cref="Errno.EEXIST"/>.</summary>
    public void AddRoute(RouteSpec route)
    {
        CheckRoute(route);
        Ack(RtRequests.NewRoute(Request, route), new Operation("RTM_NEWROUTE", detail: route));
    }

    /// <summary>Adds the route, or replaces the main table's route to the same destination (NLM_F_REPLACE).</summary>
    public void ReplaceRoute(RouteSpec route)
    {
        CheckRoute(route);
        Ack(RtRequests.ReplaceRoute(Request, route), new Operation("RTM_NEWROUTE replace", detail: route));
    }

    /// <summary>
    /// Deletes the route to <paramref name="route"/>'s destination whose rtm_protocol is <see cref="RouteSpec.Protocol"/>
    /// (the kernel matches a non-zero protocol, so a route another owner added is never hit); false when there is none.
    /// </summary>
    public bool DeleteRoute(RouteSpec route)
    {
        ArgumentNullException.ThrowIfNull(route);
        CheckPrefix(route.Destination, route.PrefixLength);
        return TryAck(RtRequests.DeleteRoute(Request, route), new Operation("RTM_DELROUTE", detail: route), Errno.ESRCH);
    }

    private static void CheckRoute(RouteSpec route)
    {
        ArgumentNullException.ThrowIfNull(route);
        CheckPrefix(route.Destination, route.PrefixLength);
        if (route.OutIndex != 0 || route.Gateway is null) CheckIndex(route.OutIndex);
        if (route.Gateway is { } gw && gw.AddressFamily != route.Destination.AddressFamily)
            throw new ArgumentException($"gateway {gw} is not of the family of {route.Destination}", nameof(route));
    }

    /// <summary>The main table's routes of one family.</summary>
    public IReadOnlyList<RouteInfo> ListRoutes(AddressFamily family)
    {
        var filterFamily = family switch
        {
            AddressFamily.InterNetwork => Family.Inet,
            AddressFamily.InterNetworkV6 => Family.Inet6,
            _ => throw new ArgumentException($"address family {family} is not IPv4 or IPv6", nameof(family)),
        };
        var routes = new List<RouteInfo>();
        Exchange(RtRequests.DumpRoutes(Request, filterFamily), new Operation("RTM_GETROUTE dump"),
            ReplyKind.Dump, RtParsers.Route, routes);
        routes.RemoveAll(r => r.Table != RouteTable.Main || r.Destination.AddressFamily != family);
        return routes;
    }

    // ---- the exchange ----

    private Span<byte> Request
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _request;
        }
    }

    private void Ack(int length, in Operation operation) =>
        Exchange<object>(length, operation, ReplyKind.Ack, null, null);

    /// <summary>False, instead of an exception, when the kernel answers <paramref name="absentErrno"/>.</summary>
    private bool TryAck(int length, in Operation operation, int absentErrno) =>
        Exchange<object>(length, operation, ReplyKind.Ack, null, null, absentErrno) is not null;

    private static readonly object Acknowledged = new();

    /// <summary>
    /// Sends the request in <see cref="_request"/> and reads until its reply is complete. Retries (with a new
    /// sequence number) a dump the kernel flagged as interrupted, and any read-only request whose reply did not
    /// fit the receive buffer. Fails with <see cref="NetlinkException"/> on NLMSG_ERROR, except that an answer
    /// of <paramref name="absentErrno"/> returns null. A successful Ack request returns a non-null marker.
    /// </summary>
    private T? Exchange<T>(int length, in Operation operation, ReplyKind kind, Parser<T>? parse, List<T>? results,
        int absentErrno = 0) where T : class
    {
        for (var attempt = 1; ; attempt++)
        {
            var seq = ++_seq;
            MemoryMarshal.Write(_request.AsSpan(8), in seq); // nlmsg_seq
            _transport.Send(_request.AsSpan(0, length));

            var tracker = new ReplyTracker(seq, _transport.PortId, kind);
            T? single = null;
            results?.Clear();
            var truncatedLength = 0;
            try
            {
                while (!tracker.IsComplete)
                {
                    var received = _transport.Receive(_receive, dontWait: false);
                    if (received > _receive.Length)
                    {
                        truncatedLength = received;
                        break;
                    }
                    var reader = new NetlinkReader(_receive.AsSpan(0, received));
                    while (reader.TryRead(out var message))
                    {
                        if (!tracker.Accept(in message) || parse is null) continue;
                        var item = parse(in message);
                        if (item is null) continue;
                        if (results is not null) results.Add(item);
                        else single = item;
                    }
                }
            }
            catch (NetlinkException)
            {
                // A malformed reply: leave no half-read dump behind, or the next dump on this socket gets EBUSY.
                Drain();
                throw;
            }

            if (truncatedLength > 0)
            {
                // The datagram's tail is gone, and with it maybe NLMSG_DONE: read out the rest of the reply, then
                // ask again with a buffer that fits.
                Drain();
                _receive = GC.AllocateUninitializedArray<byte>((truncatedLength + 4095) & ~4095);
                if (kind == ReplyKind.Ack)
                    throw new NetlinkException(operation.ToString(), Errno.EMSGSIZE,
                        $"the {truncatedLength}-byte acknowledgement did not fit the receive buffer; the request's outcome is unknown");
                if (attempt < MaxAttempts) continue;
                throw new NetlinkException(operation.ToString(), Errno.EMSGSIZE, $"reply still truncated after {attempt} attempts");
            }

            if (tracker.Error != 0)
            {
                if (tracker.Error == absentErrno) return null;
                throw new NetlinkException(operation.ToString(), tracker.Error, tracker.ErrorMessage);
            }

            if (kind == ReplyKind.Dump && tracker.Interrupted)
            {
                if (attempt < MaxAttempts) continue;
                throw new NetlinkException(operation.ToString(), Errno.EINTR,
                    $"the dump was interrupted by concurrent changes {attempt} times in a row");
            }
            return kind == ReplyKind.Ack ? (T)Acknowledged : single;
        }
    }

    private delegate T? Parser<T>(in NetlinkMessage message) where T : class;

    /// <summary>
    /// Discards whatever is queued. Each receive makes the kernel queue the next part of a running dump before
    /// it returns, so an empty queue means no dump is left running.
    /// </summary>
    private void Drain()
    {
        try
        {
            while (_transport.Receive(_receive, dontWait: true) >= 0) { }
        }
        catch (NetlinkException)
        {
            // Only called on a path that is already failing or retrying; the original outcome matters more.
        }
    }

    private static void CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (Encoding.UTF8.GetByteCount(name) > IfNameMax)
            throw new ArgumentException($"interface name '{name}' is longer than {IfNameMax} bytes", nameof(name));
    }

    private static void CheckIndex(int index) => ArgumentOutOfRangeException.ThrowIfNegativeOrZero(index);

    private static void CheckMtu(int? mtu)
    {
        if (mtu is { } m) ArgumentOutOfRangeException.ThrowIfNegativeOrZero(m, nameof(mtu));
    }

    private static void CheckPrefix(IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        var max = address.AddressFamily switch
        {
            AddressFamily.InterNetwork => 32,
            AddressFamily.InterNetworkV6 => 128,
            _ => throw new ArgumentException($"{address} is not an IPv4 or IPv6 address", nameof(address)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, max);
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _transport.Dispose();
    }
}
