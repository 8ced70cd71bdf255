using System.Net;
using System.Net.Sockets;
using PodBridge.Netlink.Wire;
using static PodBridge.Netlink.Wire.MessageFlags;

namespace PodBridge.Netlink;

/// <summary>
/// The typed rtnetlink requests, each written into a caller's buffer; returns the message length.
/// nlmsg_seq is left 0: the socket stamps it when sending. Unit tests compare these bytes with literals.
/// </summary>
internal static partial class RtRequests
{
    private const ushort Create = Request | Ack | MessageFlags.Create | Excl;
    private const ushort Change = Request | Ack;

    public static int GetLink(Span<byte> buffer, string name)
    {
        var w = Begin(buffer, MessageType.GetLink, Request, new IfInfoMsg());
        w.WriteString(LinkAttr.Name, name);
        w.WriteU32(LinkAttr.ExtMask, ExtFilter.SkipStats);
        return w.Finish();
    }

    public static int GetLink(Span<byte> buffer, int index)
    {
        var w = Begin(buffer, MessageType.GetLink, Request, new IfInfoMsg { Index = index });
        w.WriteU32(LinkAttr.ExtMask, ExtFilter.SkipStats);
        return w.Finish();
    }

    public static int DumpLinks(Span<byte> buffer)
    {
        var w = Begin(buffer, MessageType.GetLink, Request | Dump, new IfInfoMsg());
        w.WriteU32(LinkAttr.ExtMask, ExtFilter.SkipStats);
        return w.Finish();
    }

    /// <summary>
    /// A new bridge; with <paramref name="vlanFiltering"/> it is born filtering (IFLA_BR_VLAN_FILTERING in its link
    /// info data), which a kernel without bridge VLAN filtering refuses as a whole: nothing is created.
    /// </summary>
    public static int NewBridge(Span<byte> buffer, string name, int? mtu, ReadOnlySpan<byte> mac = default, bool vlanFiltering = false)
    {
        var w = Begin(buffer, MessageType.NewLink, Create, new IfInfoMsg());
        w.WriteString(LinkAttr.Name, name);
        if (mtu is { } m) w.WriteU32(LinkAttr.Mtu, (uint)m);
        if (!mac.IsEmpty) w.WriteAttribute(LinkAttr.Address, mac);
        using (w.BeginNested(LinkAttr.LinkInfo))
        {
            w.WriteString(LinkInfoAttr.Kind, "bridge", nulTerminated: false);
            if (vlanFiltering)
            {
                using (w.BeginNested(LinkInfoAttr.Data))
                    w.WriteU8(BridgeAttr.VlanFiltering, 1);
            }
        }
        return w.Finish();
    }

    /// <summary>
    /// One request creates both ends: <paramref name="name"/> in the socket's namespace and the peer directly in
    /// the namespace behind <paramref name="peerNsFd"/>, so the pod end never exists in the host namespace
    /// (no window where a host-side agent could see or grab it, and no second move request).
    /// </summary>
    public static int NewVeth(Span<byte> buffer, string name, string peerName, int peerNsFd, int? mtu, ReadOnlySpan<byte> peerMac)
    {
        var w = Begin(buffer, MessageType.NewLink, Create, new IfInfoMsg());
        w.WriteString(LinkAttr.Name, name);
        if (mtu is { } m) w.WriteU32(LinkAttr.Mtu, (uint)m);
        using (w.BeginNested(LinkAttr.LinkInfo))
        {
            w.WriteString(LinkInfoAttr.Kind, "veth", nulTerminated: false);
            using (w.BeginNested(LinkInfoAttr.Data))
            using (w.BeginNested(VethAttr.Peer, nestedFlag: false))
            {
                // VETH_INFO_PEER's payload is a whole link request body: ifinfomsg, then IFLA_* attributes.
                w.WriteStruct(new IfInfoMsg());
                w.WriteString(LinkAttr.Name, peerName);
                w.WriteU32(LinkAttr.NetNsFd, (uint)peerNsFd);
                if (mtu is { } pm) w.WriteU32(LinkAttr.Mtu, (uint)pm);
                if (!peerMac.IsEmpty) w.WriteAttribute(LinkAttr.Address, peerMac);
            }
        }
        return w.Finish();
    }

    /// <summary>Sets or clears ifi_flags bits; only the bits in <paramref name="change"/> are touched.</summary>
    public static int SetFlags(Span<byte> buffer, int index, uint flags, uint change)
    {
        var w = Begin(buffer, MessageType.SetLink, Change, new IfInfoMsg { Index = index, Flags = flags, Change = change });
        return w.Finish();
    }

    public static int SetMaster(Span<byte> buffer, int index, int masterIndex)
    {
        var w = Begin(buffer, MessageType.SetLink, Change, new IfInfoMsg { Index = index });
        w.WriteU32(LinkAttr.Master, (uint)masterIndex);
        return w.Finish();
    }

    public static int SetMtu(Span<byte> buffer, int index, int mtu)
    {
        var w = Begin(buffer, MessageType.SetLink, Change, new IfInfoMsg { Index = index });
        w.WriteU32(LinkAttr.Mtu, (uint)mtu);
        return w.Finish();
    }

    /// <summary>
    /// Bridge port options go to the AF_BRIDGE handler; it reads IFLA_PROTINFO as a nest of IFLA_BRPORT_* only
    /// when NLA_F_NESTED is set (without it, the payload is the legacy one-byte port state).
    /// </summary>
    public static int SetHairpin(Span<byte> buffer, int index, bool on) => SetBridgePort(buffer, index, hairpin: on, isolated: null);

    /// <summary>Bridge port flags in one AF_BRIDGE RTM_SETLINK (IFLA_PROTINFO): only the ones given are written.</summary>
    public static int SetBridgePort(Span<byte> buffer, int index, bool? hairpin, bool? isolated)
    {
        var w = Begin(buffer, MessageType.SetLink, Change, new IfInfoMsg { Family = Family.Bridge, Index = index });
        using (w.BeginNested(LinkAttr.ProtInfo))
        {
            if (hairpin is { } h) w.WriteU8(BridgePortAttr.Mode, h ? (byte)1 : (byte)0);
            if (isolated is { } i) w.WriteU8(BridgePortAttr.Isolated, i ? (byte)1 : (byte)0);
        }
        return w.Finish();
    }

    public static int DeleteLink(Span<byte> buffer, int index)
    {
        var w = Begin(buffer, MessageType.DelLink, Change, new IfInfoMsg { Index = index });
        return w.Finish();
    }

    public static int DeleteLink(Span<byte> buffer, string name)
    {
        var w = Begin(buffer, MessageType.DelLink, Change, new IfInfoMsg());
        w.WriteString(LinkAttr.Name, name);
        return w.Finish();
    }

    /// <summary>
    /// IPv4: IFA_LOCAL is the address, IFA_ADDRESS the same (it would be the peer on point-to-point links),
    /// IFA_BROADCAST the subnet's last address (none for /31 and /32). IPv6 knows only IFA_ADDRESS.
    /// </summary>
    public static int NewAddress(Span<byte> buffer, int index, IPAddress address, int prefixLength, bool noDad)
    {
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        var w = Begin(buffer, MessageType.NewAddr, Create, new IfAddrMsg
        {
            Family = v4 ? Family.Inet : Family.Inet6,
            PrefixLength = (byte)prefixLength,
            Flags = !v4 && noDad ? AddrFlags.NoDad : (byte)0,
            Index = index,
        });
        if (v4)
        {
            w.WriteAddress(AddrAttr.Local, address);
            w.WriteAddress(AddrAttr.Address, address);
            if (prefixLength <= 30) w.WriteAddress(AddrAttr.Broadcast, Broadcast(address, prefixLength));
        }
        else
        {
            w.WriteAddress(AddrAttr.Address, address);
        }
        return w.Finish();
    }

    public static int DeleteAddress(Span<byte> buffer, int index, IPAddress address, int prefixLength)
    {
        var v4 = address.AddressFamily == AddressFamily.InterNetwork;
        var w = Begin(buffer, MessageType.DelAddr, Change, new IfAddrMsg
        {
            Family = v4 ? Family.Inet : Family.Inet6,
            PrefixLength = (byte)prefixLength,
            Index = index,
        });
        if (v4) w.WriteAddress(AddrAttr.Local, address);
        w.WriteAddress(AddrAttr.Address, address);
        return w.Finish();
    }

    /// <summary>With NETLINK_GET_STRICT_CHK the kernel itself filters by ifa_index; we filter again in case it did not.</summary>
    public static int DumpAddresses(Span<byte> buffer, int index, byte family)
    {
        var w = Begin(buffer, MessageType.GetAddr, Request | Dump, new IfAddrMsg { Family = family, Index = index });
        return w.Finish();
    }

    public static int NewRoute(Span<byte> buffer, RouteSpec route) => Route(buffer, MessageType.NewRoute, Create, route);

    /// <summary>NLM_F_REPLACE: one message moves an existing route to a new gateway, no window without it.</summary>
    public static int ReplaceRoute(Span<byte> buffer, RouteSpec route) =>
        Route(buffer, MessageType.NewRoute, Request | Ack | MessageFlags.Create | MessageFlags.Replace, route);

    public static int DeleteRoute(Span<byte> buffer, RouteSpec route) => Route(buffer, MessageType.DelRoute, Request | Ack, route);

    private static int Route(Span<byte> buffer, ushort type, ushort flags, RouteSpec route)
    {
        var v4 = route.Destination.AddressFamily == AddressFamily.InterNetwork;
        var w = Begin(buffer, type, flags, new RtMsg
        {
            Family = v4 ? Family.Inet : Family.Inet6,
            DstLength = (byte)route.PrefixLength,
            Table = RouteTable.Main,
            Protocol = route.Protocol,
            Scope = route.Scope,
            Type = RouteType.Unicast,
        });
        // A default route carries no RTA_DST, as iproute2 sends it.
        if (route.PrefixLength > 0) w.WriteAddress(RouteAttr.Dst, route.Destination);
        if (route.Gateway is { } gateway) w.WriteAddress(RouteAttr.Gateway, gateway);
        if (route.OutIndex != 0) w.WriteU32(RouteAttr.Oif, (uint)route.OutIndex);
        return w.Finish();
    }

    /// <summary>rtm_table in a strict-checked dump header makes the kernel skip every other table.</summary>
    public static int DumpRoutes(Span<byte> buffer, byte family)
    {
        var w = Begin(buffer, MessageType.GetRoute, Request | Dump, new RtMsg { Family = family, Table = RouteTable.Main });
        return w.Finish();
    }

    private static NetlinkWriter Begin<T>(Span<byte> buffer, ushort type, ushort flags, in T header) where T : unmanaged
    {
        var w = new NetlinkWriter(buffer);
        w.WriteHeader(type, flags);
        w.WriteStruct(in header);
        return w;
    }

    private static IPAddress Broadcast(IPAddress address, int prefixLength)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        var host = prefixLength == 0 ? uint.MaxValue : uint.MaxValue >> prefixLength;
        var value = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(bytes) | host;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        return new IPAddress(bytes);
    }
}
