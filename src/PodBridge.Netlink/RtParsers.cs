using System.Net;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink;

/// <summary>Decodes RTM_NEWLINK / RTM_NEWADDR / RTM_NEWROUTE replies; other message types give null.</summary>
internal static class RtParsers
{
    public static LinkInfo? Link(in NetlinkMessage message)
    {
        if (message.Type != MessageType.NewLink) return null;
        var header = message.ReadFixed<IfInfoMsg>(out var attributes);
        string? name = null, kind = null;
        byte[] mac = [];
        int mtu = 0;
        int? master = null, parent = null, netnsId = null;
        BridgePortInfo? port = null;
        while (attributes.TryRead(out var a))
        {
            switch (a.Type)
            {
                case LinkAttr.Name: name = a.String; break;
                case LinkAttr.Address: mac = a.Value.ToArray(); break;
                case LinkAttr.Mtu: mtu = a.I32; break;
                case LinkAttr.Master: master = a.I32; break;
                case LinkAttr.Link: parent = a.I32; break;
                case LinkAttr.LinkNetNsId: netnsId = a.I32; break;
                case LinkAttr.LinkInfo:
                    var info = a.Nested;
                    string? slaveKind = null;
                    while (info.TryRead(out var i))
                    {
                        if (i.Type == LinkInfoAttr.Kind) kind = i.String;
                        else if (i.Type == LinkInfoAttr.SlaveKind) slaveKind = i.String;
                        // The kernel writes SLAVE_KIND before SLAVE_DATA (rtnl_link_slave_info_fill).
                        else if (i.Type == LinkInfoAttr.SlaveData && slaveKind == "bridge") port = BridgePort(i.Nested);
                    }
                    break;
            }
        }
        return new LinkInfo(
            header.Index,
            name ?? throw NetlinkReader.Malformed($"RTM_NEWLINK for ifindex {header.Index} has no IFLA_IFNAME"),
            kind,
            mac,
            mtu,
            (header.Flags & LinkFlags.Up) != 0,
            (header.Flags & LinkFlags.Promisc) != 0,
            master is 0 ? null : master,
            parent,
            netnsId,
            port);
    }

    private static BridgePortInfo BridgePort(AttributeReader attributes)
    {
        bool hairpin = false, isolated = false;
        while (attributes.TryRead(out var a))
        {
            switch (a.Type)
            {
                case BridgePortAttr.Mode: hairpin = a.Value.Length > 0 && a.Value[0] != 0; break;
                case BridgePortAttr.Isolated: isolated = a.Value.Length > 0 && a.Value[0] != 0; break;
            }
        }
        return new BridgePortInfo(hairpin, isolated);
    }

    public static AddressInfo? Address(in NetlinkMessage message)
    {
        if (message.Type != MessageType.NewAddr) return null;
        var header = message.ReadFixed<IfAddrMsg>(out var attributes);
        // An AF_UNSPEC dump also walks other families' tables (MCTP, Phonet) whose addresses are not IP.
        if (header.Family is not (Family.Inet or Family.Inet6)) return null;
        IPAddress? local = null, address = null;
        uint flags = header.Flags;
        while (attributes.TryRead(out var a))
        {
            switch (a.Type)
            {
                case AddrAttr.Local: local = a.Address; break;
                case AddrAttr.Address: address = a.Address; break;
                case AddrAttr.Flags: flags = a.U32; break;
            }
        }
        var ip = local ?? address;
        if (ip is null) return null;
        return new AddressInfo(header.Index, ip, header.PrefixLength, header.Scope, flags);
    }

    public static RouteInfo? Route(in NetlinkMessage message)
    {
        if (message.Type != MessageType.NewRoute) return null;
        var header = message.ReadFixed<RtMsg>(out var attributes);
        if (header.Family is not (Family.Inet or Family.Inet6)) return null;
        IPAddress? destination = null, gateway = null;
        int? oif = null;
        uint table = header.Table;
        while (attributes.TryRead(out var a))
        {
            switch (a.Type)
            {
                case RouteAttr.Dst: destination = a.Address; break;
                case RouteAttr.Gateway: gateway = a.Address; break;
                case RouteAttr.Oif: oif = a.I32; break;
                // Tables above 255 exist only here; rtm_table then says RT_TABLE_COMPAT (252).
                case RouteAttr.Table: table = a.U32; break;
            }
        }
        destination ??= header.Family == Family.Inet6 ? IPAddress.IPv6Any : IPAddress.Any;
        return new RouteInfo(destination, header.DstLength, gateway, oif, header.Scope,
            table > byte.MaxValue ? (byte)0 : (byte)table, header.Protocol);
    }

    /// <summary>An AF_BRIDGE RTM_NEWLINK of an RTEXT_FILTER_BRVLAN dump: the port's VLANs (ranges expanded).</summary>
    public static List<PortVlan>? BridgeVlans(in NetlinkMessage message)
    {
        if (message.Type != MessageType.NewLink) return null;
        var header = message.ReadFixed<IfInfoMsg>(out var attributes);
        if (header.Family != Family.Bridge) return null;
        var vlans = new List<PortVlan>();
        while (attributes.TryRead(out var a))
        {
            if (a.Type != LinkAttr.AfSpec) continue;
            var spec = a.Nested;
            ushort rangeStart = 0;
            while (spec.TryRead(out var s))
            {
                if (s.Type != BridgeAfSpecAttr.VlanInfo) continue;
                if (s.Value.Length < 4) throw NetlinkReader.Malformed($"IFLA_BRIDGE_VLAN_INFO has {s.Value.Length} bytes, expected 4");
                var flags = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(s.Value);
                var vid = System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(s.Value[2..]);
                if ((flags & BridgeVlanFlags.RangeBegin) != 0) { rangeStart = vid; continue; }
                var first = (flags & BridgeVlanFlags.RangeEnd) != 0 ? rangeStart : vid;
                for (var v = first; v <= vid; v++)
                    vlans.Add(new PortVlan(header.Index, v, (flags & BridgeVlanFlags.Pvid) != 0, (flags & BridgeVlanFlags.Untagged) != 0));
            }
        }
        return vlans;
    }
}
