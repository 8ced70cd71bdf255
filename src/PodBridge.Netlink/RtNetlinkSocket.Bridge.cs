namespace PodBridge.Netlink;

// Bridge port options and VLANs.
public sealed partial class RtNetlinkSocket
{
    /// <summary>Port isolation of a bridge port (IFLA_BRPORT_ISOLATED); the link must already be enslaved.</summary>
    public void SetBridgePortIsolated(int index, bool on)
    {
        CheckIndex(index);
        Ack(RtRequests.SetIsolated(Request, index, on), new Operation("RTM_SETLINK AF_BRIDGE isolated", index: index));
    }
}
