using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink;

// Bridge port options and VLANs.
public sealed partial class RtNetlinkSocket
{
    /// <summary>
    /// Hairpin and isolation of a bridge port in one request (ADD sets both with one round trip); a null flag is left
    /// as it is. The link must already be enslaved.
    /// </summary>
    public void SetBridgePort(int index, bool? hairpin, bool? isolated)
    {
        CheckIndex(index);
        Ack(RtRequests.SetBridgePort(Request, index, hairpin, isolated), new Operation("RTM_SETLINK AF_BRIDGE port flags", index: index));
    }

    /// <summary>Port isolation of a bridge port (IFLA_BRPORT_ISOLATED); the link must already be enslaved.</summary>
    public void SetBridgePortIsolated(int index, bool on)
    {
        CheckIndex(index);
        Ack(RtRequests.SetIsolated(Request, index, on), new Operation("RTM_SETLINK AF_BRIDGE isolated", index: index));
    }

    /// <summary>vlan_filtering on an existing bridge (IFLA_BR_VLAN_FILTERING); EOPNOTSUPP on a kernel without it.</summary>
    public void SetBridgeVlanFiltering(int bridgeIndex, bool on)
    {
        CheckIndex(bridgeIndex);
        Ack(RtRequests.SetVlanFiltering(Request, bridgeIndex, on), new Operation("RTM_NEWLINK bridge vlan_filtering", index: bridgeIndex));
    }

    /// <summary>Adds VLANs to a bridge port (the port's bridge must filter VLANs).</summary>
    public void AddBridgeVlans(int portIndex, params VlanRange[] vlans)
    {
        CheckIndex(portIndex);
        if (vlans.Length == 0) return;
        Ack(RtRequests.BridgeVlans(Request, portIndex, add: true, vlans), new Operation("RTM_SETLINK AF_BRIDGE vlan", index: portIndex));
    }

    /// <summary>Removes VLANs from a bridge port; one that is not there fails with ENOENT.</summary>
    public void DeleteBridgeVlans(int portIndex, params VlanRange[] vlans)
    {
        CheckIndex(portIndex);
        if (vlans.Length == 0) return;
        Ack(RtRequests.BridgeVlans(Request, portIndex, add: false, vlans), new Operation("RTM_DELLINK AF_BRIDGE vlan", index: portIndex));
    }

    /// <summary>The VLANs of one bridge port (empty when it has none or its bridge does not filter VLANs).</summary>
    public List<PortVlan> ListBridgeVlans(int portIndex)
    {
        var ports = new List<List<PortVlan>>();
        Exchange(RtRequests.DumpBridgeVlans(Request), new Operation("RTM_GETLINK AF_BRIDGE vlan dump"), ReplyKind.Dump, RtParsers.BridgeVlans, ports);
        return ports.SelectMany(p => p).Where(v => v.PortIndex == portIndex).ToList();
    }
}
