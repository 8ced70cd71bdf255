using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

// vlan, vlanTrunk, preserveDefaultVlan: the bridge filters VLANs (IFLA_BR_VLAN_FILTERING), the host veth port carries
// the pod's VLANs (AF_BRIDGE IFLA_BRIDGE_VLAN_INFO), and with isGateway the gateway sits on "<bridge>.<vlan>", the
// host end of a veth whose bridge end is an access port of that VLAN (the reference's layout). DEL leaves the
// bridge's VLAN settings for the other pods.
public sealed partial class BridgePlugin
{
    /// <summary>EOPNOTSUPP from a VLAN request: the kernel was built without CONFIG_BRIDGE_VLAN_FILTERING.</summary>
    private static CniException VlanKernelError(string what, NetlinkException e) => e.Errno == Errno.EOPNOTSUPP
        ? new CniException(CniErrorCode.KernelFeatureMissing,
            "vlan/vlanTrunk: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING is not set); " +
            $"remove vlan and vlanTrunk from the config or use a kernel with it ({what}: {e.Message})")
        : Kernel(what, e);

    /// <summary>The pod's VLANs on its host veth port, as the reference sets them.</summary>
    private static void ConfigurePortVlans(RtNetlinkSocket host, int portIndex, string portName, BridgeConfig cfg)
    {
        if (!cfg.UsesVlans) return;
        using var _ = Log.Time("netlink.vlan");
        try
        {
            // A new port starts with the bridge's default PVID (VLAN 1, untagged); preserveDefaultVlan keeps it.
            if (!cfg.PreserveDefaultVlan)
                foreach (var v in host.ListBridgeVlans(portIndex))
                    host.DeleteBridgeVlans(portIndex, VlanRange.One(v.Vid));
            var vlans = new List<VlanRange>();
            if (cfg.Vlan != 0) vlans.Add(VlanRange.One((ushort)cfg.Vlan, pvid: true, untagged: true));
            else if (cfg.TrunkVlans.Count > 0) vlans.Add(VlanRange.One(1, pvid: true, untagged: true)); // native VLAN 1, like the reference
            vlans.AddRange(Ranges(cfg.TrunkVlans.Where(v => v != cfg.Vlan)));
            host.AddBridgeVlans(portIndex, [.. vlans]);
        }
        catch (NetlinkException e) { throw VlanKernelError($"setting VLANs on bridge port {portName}", e); }
    }

    /// <summary>Consecutive VLAN ids as ranges (one IFLA_BRIDGE_VLAN_INFO pair each), tagged.</summary>
    private static IEnumerable<VlanRange> Ranges(IEnumerable<ushort> sorted)
    {
        ushort? first = null, last = null;
        foreach (var v in sorted)
        {
            if (last is { } l && v == l + 1) { last = v; continue; }
            if (first is { } f) yield return new VlanRange(f, last!.Value);
            first = last = v;
        }
        if (first is { } ff) yield return new VlanRange(ff, last!.Value);
    }

    /// <summary>
    /// "&lt;bridge&gt;.&lt;vlan&gt;": the gateway interface of a VLAN, the host end of a veth whose other end is an
    /// access port of that VLAN on the bridge; created once, shared by every pod of the VLAN, never deleted.
    /// </summary>
    private static LinkInfo EnsureVlanGateway(RtNetlinkSocket host, LinkInfo bridge, BridgeConfig cfg)
    {
        var name = $"{cfg.BridgeName}.{cfg.Vlan}";
        try
        {
            if (host.GetLink(name) is { } existing)
            {
                if (!existing.IsUp) host.SetLinkUp(existing.Index);
                return existing;
            }
            var port = $"pbv{(uint)ChildProcess.Fnv1a64(name):x8}";
            using (var own = NetNsHandle.OpenCurrent())
            {
                try { host.CreateVeth(port, name, own, bridge.Mtu > 0 ? bridge.Mtu : null, null); }
                catch (NetlinkException e) when (e.Errno == Errno.EEXIST) { /* a concurrent ADD created it */ }
            }
            var portLink = host.GetLink(port) ?? throw new CniException(CniErrorCode.NetlinkFailure, $"VLAN gateway port {port} vanished");
            host.SetMaster(portLink.Index, bridge.Index);
            if (!cfg.PreserveDefaultVlan)
                foreach (var v in host.ListBridgeVlans(portLink.Index))
                    host.DeleteBridgeVlans(portLink.Index, VlanRange.One(v.Vid));
            host.AddBridgeVlans(portLink.Index, VlanRange.One((ushort)cfg.Vlan, pvid: true, untagged: true));
            host.SetLinkUp(portLink.Index);
            var gw = host.GetLink(name) ?? throw new CniException(CniErrorCode.NetlinkFailure, $"VLAN gateway {name} vanished");
            host.SetLinkUp(gw.Index);
            Log.Info($"created VLAN {cfg.Vlan} gateway interface {name} (bridge port {port})");
            return gw;
        }
        catch (NetlinkException e) { throw VlanKernelError($"creating the VLAN gateway interface {name}", e); }
    }

    /// <summary>CHECK: the port carries the configured access VLAN (as PVID, untagged) and every trunk VLAN.</summary>
    private static void VerifyPortVlans(RtNetlinkSocket host, LinkInfo port, BridgeConfig cfg)
    {
        if (!cfg.UsesVlans) return;
        var vlans = host.ListBridgeVlans(port.Index);
        var access = (ushort)(cfg.Vlan != 0 ? cfg.Vlan : 1);
        if (!vlans.Any(v => v.Vid == access && v.Pvid && v.Untagged))
            throw new CniException(CniErrorCode.CheckFailed, $"CHECK: bridge port {port.Name} does not have VLAN {access} as untagged PVID");
        foreach (var vid in cfg.TrunkVlans)
            if (!vlans.Any(v => v.Vid == vid))
                throw new CniException(CniErrorCode.CheckFailed, $"CHECK: bridge port {port.Name} is missing trunk VLAN {vid}");
    }
}
