using System.Net;

namespace PodBridge.Netlink;

/// <summary>A link as RTM_NEWLINK reports it.</summary>
/// <param name="Kind">IFLA_INFO_KIND ("bridge", "veth"); null for links without rtnl_link_ops (physical NICs).</param>
/// <param name="Mac">IFLA_ADDRESS; empty when the link has no hardware address.</param>
/// <param name="IsUp">IFF_UP in ifi_flags (administratively up, not carrier).</param>
/// <param name="Promisc">IFF_PROMISC in ifi_flags.</param>
/// <param name="MasterIndex">IFLA_MASTER: the bridge this link is a port of.</param>
/// <param name="ParentIndex">IFLA_LINK: for a veth, the peer's ifindex (in the peer's namespace).</param>
/// <param name="LinkNetNsId">IFLA_LINK_NETNSID: the peer's namespace as an nsid of this namespace.</param>
/// <param name="BridgePort">The port's options when the link is a bridge port; null otherwise.</param>
public sealed record LinkInfo(
    int Index,                               // ifi_index
    string Name,                             // IFLA_IFNAME
    string? Kind,                            // IFLA_LINKINFO/IFLA_INFO_KIND
    byte[] Mac,                              // IFLA_ADDRESS
    int Mtu,                                 // IFLA_MTU
    bool IsUp,                               // IFF_UP
    bool Promisc,                            // IFF_PROMISC
    int? MasterIndex,                        // IFLA_MASTER
    int? ParentIndex,                        // IFLA_LINK
    int? LinkNetNsId,                        // IFLA_LINK_NETNSID
    BridgePortInfo? BridgePort = null)       // IFLA_LINKINFO/IFLA_INFO_SLAVE_DATA when IFLA_INFO_SLAVE_KIND is "bridge"
{
    /// <summary>Lowercase colon-separated, as CNI results and `ip link` print it.</summary>
    public string MacString => global::PodBridge.Netlink.Mac.Format(Mac);
}

/// <summary>An interface address as RTM_NEWADDR reports it.</summary>
/// <param name="Address">IFA_LOCAL when present (IPv4), else IFA_ADDRESS.</param>
/// <param name="Flags">IFA_FLAGS when present, else ifa_flags (IFA_F_NODAD, IFA_F_PERMANENT, ...).</param>
public sealed record AddressInfo(
    int Index,                               // ifa_index
    IPAddress Address,                       // IFA_LOCAL / IFA_ADDRESS
    int PrefixLength,                        // ifa_prefixlen
    byte Scope,                              // ifa_scope
    uint Flags);                             // IFA_FLAGS / ifa_flags

/// <summary>A route to add to the main table.</summary>
/// <param name="Destination">RTA_DST; the network address (the kernel rejects IPv4 host bits past the prefix).</param>
/// <param name="Gateway">RTA_GATEWAY; null for an on-link route.</param>
/// <param name="OutIndex">RTA_OIF; 0 (only with a gateway) lets the kernel pick the link the gateway is on.</param>
/// <param name="Scope">rtm_scope: 0 = RT_SCOPE_UNIVERSE, 253 = RT_SCOPE_LINK.</param>
/// <param name="Protocol">rtm_protocol: who owns the route; 3 = RTPROT_BOOT. Owners find their routes by it.</param>
public sealed record RouteSpec(IPAddress Destination, int PrefixLength, IPAddress? Gateway, int OutIndex, byte Scope = 0,
    byte Protocol = 3);

/// <summary>A route as RTM_NEWROUTE reports it.</summary>
public sealed record RouteInfo(
    IPAddress Destination,                   // RTA_DST (0.0.0.0 / :: when absent: a default route)
    int PrefixLength,                        // rtm_dst_len
    IPAddress? Gateway,                      // RTA_GATEWAY
    int? OutIndex,                           // RTA_OIF
    byte Scope,                              // rtm_scope
    byte Table,                              // RTA_TABLE / rtm_table
    byte Protocol);                          // rtm_protocol

/// <summary>A bridge port's options (IFLA_BRPORT_* inside IFLA_INFO_SLAVE_DATA).</summary>
public sealed record BridgePortInfo(
    bool Hairpin,                            // IFLA_BRPORT_MODE
    bool Isolated);                          // IFLA_BRPORT_ISOLATED

/// <summary>VLANs <see cref="First"/>..<see cref="Last"/> (one VLAN when equal) as a bridge port carries them.</summary>
/// <param name="Pvid">BRIDGE_VLAN_INFO_PVID: untagged frames entering the port get this VLAN (one per port).</param>
/// <param name="Untagged">BRIDGE_VLAN_INFO_UNTAGGED: frames of this VLAN leave the port untagged.</param>
public readonly record struct VlanRange(ushort First, ushort Last, bool Pvid = false, bool Untagged = false)
{
    public static VlanRange One(ushort vid, bool pvid = false, bool untagged = false) => new(vid, vid, pvid, untagged);
}

/// <summary>One VLAN of a bridge port, as an RTEXT_FILTER_BRVLAN dump reports it.</summary>
public readonly record struct PortVlan(
    int PortIndex,                           // ifi_index
    ushort Vid,                              // bridge_vlan_info.vid
    bool Pvid,                               // BRIDGE_VLAN_INFO_PVID
    bool Untagged);                          // BRIDGE_VLAN_INFO_UNTAGGED
