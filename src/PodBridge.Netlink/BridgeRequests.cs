using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink;

// Bridge port options and VLANs: RTM_SETLINK to the AF_BRIDGE handler.
internal static partial class RtRequests
{
    /// <summary>
    /// IFLA_BRPORT_ISOLATED: an isolated port forwards only to non-isolated ports (the bridge itself, uplinks), never
    /// to another isolated one. Same nested IFLA_PROTINFO as hairpin mode.
    /// </summary>
    public static int SetIsolated(Span<byte> buffer, int index, bool on)
    {
        var w = Begin(buffer, MessageType.SetLink, Change, new IfInfoMsg { Family = Family.Bridge, Index = index });
        using (w.BeginNested(LinkAttr.ProtInfo))
            w.WriteU8(BridgePortAttr.Isolated, on ? (byte)1 : (byte)0);
        return w.Finish();
    }
}
