namespace PodBridge.Netlink.Wire;

// Kernel uapi constants (include/uapi/linux/{netlink,rtnetlink,if_link,if_addr,veth,if_bridge}.h).
// .NET names on the left, kernel names in the comment so both can be grepped.

internal static class NetlinkProtocol
{
    public const int Route = 0;             // NETLINK_ROUTE
    public const int Netfilter = 12;        // NETLINK_NETFILTER
    public const int SolNetlink = 270;      // SOL_NETLINK
    public const int CapAck = 10;           // NETLINK_CAP_ACK: errors do not echo our request back
    public const int ExtAck = 11;           // NETLINK_EXT_ACK: errors carry a text message
    public const int GetStrictCheck = 12;   // NETLINK_GET_STRICT_CHK: dump filters in the header are honoured
}

internal static class MessageType
{
    public const ushort Noop = 1;           // NLMSG_NOOP
    public const ushort Error = 2;          // NLMSG_ERROR
    public const ushort Done = 3;           // NLMSG_DONE
    public const ushort Overrun = 4;        // NLMSG_OVERRUN
    public const ushort NewLink = 16;       // RTM_NEWLINK
    public const ushort DelLink = 17;       // RTM_DELLINK
    public const ushort GetLink = 18;       // RTM_GETLINK
    public const ushort SetLink = 19;       // RTM_SETLINK
    public const ushort NewAddr = 20;       // RTM_NEWADDR
    public const ushort DelAddr = 21;       // RTM_DELADDR
    public const ushort GetAddr = 22;       // RTM_GETADDR
    public const ushort NewRoute = 24;      // RTM_NEWROUTE
    public const ushort DelRoute = 25;      // RTM_DELROUTE
    public const ushort GetRoute = 26;      // RTM_GETROUTE
}

internal static class MessageFlags
{
    public const ushort Request = 0x01;     // NLM_F_REQUEST
    public const ushort Multi = 0x02;       // NLM_F_MULTI
    public const ushort Ack = 0x04;         // NLM_F_ACK
    public const ushort DumpInterrupted = 0x10; // NLM_F_DUMP_INTR
    public const ushort Dump = 0x300;       // NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
    public const ushort Replace = 0x100;    // NLM_F_REPLACE
    public const ushort Excl = 0x200;       // NLM_F_EXCL
    public const ushort Create = 0x400;     // NLM_F_CREATE
    public const ushort Append = 0x800;     // NLM_F_APPEND (new rules go at the end of the chain)
    public const ushort Capped = 0x100;     // NLM_F_CAPPED (on NLMSG_ERROR): request payload not echoed
    public const ushort AckTlvs = 0x200;    // NLM_F_ACK_TLVS (on NLMSG_ERROR/DONE): extended ack attributes follow
}

internal static class ErrorAttr
{
    public const ushort Msg = 1;            // NLMSGERR_ATTR_MSG
    public const ushort Offset = 2;         // NLMSGERR_ATTR_OFFS
}

internal static class AttrFlags
{
    public const ushort Nested = 0x8000;    // NLA_F_NESTED
    public const ushort NetByteOrder = 0x4000; // NLA_F_NET_BYTEORDER
    public const ushort TypeMask = 0x3fff;  // NLA_TYPE_MASK
}

internal static class Family
{
    public const byte Unspec = 0;           // AF_UNSPEC
    public const byte Inet = 2;             // AF_INET
    public const byte Bridge = 7;           // AF_BRIDGE
    public const byte Inet6 = 10;           // AF_INET6
    public const ushort Netlink = 16;       // AF_NETLINK
}

internal static class LinkAttr
{
    public const ushort Address = 1;        // IFLA_ADDRESS
    public const ushort Broadcast = 2;      // IFLA_BROADCAST
    public const ushort Name = 3;           // IFLA_IFNAME
    public const ushort Mtu = 4;            // IFLA_MTU
    public const ushort Link = 5;           // IFLA_LINK
    public const ushort Master = 10;        // IFLA_MASTER
    public const ushort ProtInfo = 12;      // IFLA_PROTINFO
    public const ushort LinkInfo = 18;      // IFLA_LINKINFO
    public const ushort ExtMask = 29;       // IFLA_EXT_MASK
    public const ushort NetNsFd = 28;       // IFLA_NET_NS_FD
    public const ushort LinkNetNsId = 37;   // IFLA_LINK_NETNSID
    public const ushort AfSpec = 26;        // IFLA_AF_SPEC
}

internal static class BridgeAttr
{
    public const ushort VlanFiltering = 7;  // IFLA_BR_VLAN_FILTERING (u8, inside IFLA_INFO_DATA of a bridge)
}

internal static class BridgeAfSpecAttr
{
    public const ushort Flags = 0;          // IFLA_BRIDGE_FLAGS (u16)
    public const ushort VlanInfo = 2;       // IFLA_BRIDGE_VLAN_INFO (struct bridge_vlan_info)
}

internal static class BridgeFlags
{
    public const ushort Master = 1;         // BRIDGE_FLAGS_MASTER: the request is for the bridge the port belongs to
}

internal static class BridgeVlanFlags
{
    public const ushort Pvid = 2;           // BRIDGE_VLAN_INFO_PVID: untagged ingress frames get this VLAN
    public const ushort Untagged = 4;       // BRIDGE_VLAN_INFO_UNTAGGED: egress frames leave untagged
    public const ushort RangeBegin = 8;     // BRIDGE_VLAN_INFO_RANGE_BEGIN
    public const ushort RangeEnd = 16;      // BRIDGE_VLAN_INFO_RANGE_END
}

internal static class LinkInfoAttr
{
    public const ushort Kind = 1;           // IFLA_INFO_KIND
    public const ushort Data = 2;           // IFLA_INFO_DATA
    public const ushort SlaveKind = 4;      // IFLA_INFO_SLAVE_KIND ("bridge" on a bridge port)
    public const ushort SlaveData = 5;      // IFLA_INFO_SLAVE_DATA (IFLA_BRPORT_* of a bridge port)
}

internal static class VethAttr
{
    public const ushort Peer = 1;           // VETH_INFO_PEER
}

internal static class BridgePortAttr
{
    public const ushort Mode = 4;           // IFLA_BRPORT_MODE (hairpin)
    public const ushort Isolated = 33;      // IFLA_BRPORT_ISOLATED (Linux 4.18)
}

internal static class ExtFilter
{
    public const uint BridgeVlan = 1 << 1;  // RTEXT_FILTER_BRVLAN: AF_BRIDGE dumps carry each port's VLANs
    public const uint SkipStats = 1 << 3;   // RTEXT_FILTER_SKIP_STATS: halves a link message; older kernels ignore it
}

internal static class LinkFlags
{
    public const uint Up = 0x1;             // IFF_UP
    public const uint Promisc = 0x100;      // IFF_PROMISC
}

internal static class AddrAttr
{
    public const ushort Address = 1;        // IFA_ADDRESS
    public const ushort Local = 2;          // IFA_LOCAL
    public const ushort Label = 3;          // IFA_LABEL
    public const ushort Broadcast = 4;      // IFA_BROADCAST
    public const ushort Flags = 8;          // IFA_FLAGS (u32, supersedes ifa_flags)
}

internal static class AddrFlags
{
    public const byte NoDad = 0x02;         // IFA_F_NODAD
}

internal static class RouteAttr
{
    public const ushort Dst = 1;            // RTA_DST
    public const ushort Oif = 4;            // RTA_OIF
    public const ushort Gateway = 5;        // RTA_GATEWAY
    public const ushort Table = 15;         // RTA_TABLE
}

internal static class RouteTable
{
    public const byte Main = 254;           // RT_TABLE_MAIN
}

internal static class RouteProtocol
{
    public const byte Boot = 3;             // RTPROT_BOOT
}

internal static class RouteType
{
    public const byte Unicast = 1;          // RTN_UNICAST
}

internal static class Scope
{
    public const byte Universe = 0;         // RT_SCOPE_UNIVERSE
    public const byte Link = 253;           // RT_SCOPE_LINK
}
