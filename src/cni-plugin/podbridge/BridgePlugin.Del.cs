using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

public sealed partial class BridgePlugin
{
    /// <summary>
    /// Idempotent and best effort (SPEC: DEL must succeed when things are already gone): the pod interface is
    /// removed first, then the lease, so an address is never handed out while a link still carries it.
    /// containerd sends DEL twice, the second with an empty CNI_NETNS and no prevResult.
    /// </summary>
    public void Del(CniRequest request, NetConf conf)
    {
        var cfg = BridgeConfig.ForTeardown(conf);
        var hostName = HostVeth.Name(request.ContainerId, request.IfName);
        // ipMasq: the pod's addresses come from prevResult, else (CNI 0.3.x, containerd's second DEL) from the pod
        // interface just before it goes, as the reference reads them.
        var masq = cfg.IpMasq ? PrevResultAddresses(cfg, request.IfName) : null;

        using (var podNs = TryOpenPodNetNs(request.NetNs))
        {
            if (podNs is not null)
            {
                using var _ = Log.Time("netlink.del");
                try
                {
                    using var pod = RtNetlinkSocket.OpenIn(podNs);
                    if (masq is { Count: 0 } && pod.GetLink(request.IfName) is { } link)
                        masq = MasqueradeTargets(pod.ListAddresses(link.Index).Select(a => new IpCidr(a.Address, a.PrefixLength)));
                    if (pod.DeleteLink(request.IfName)) Log.Info($"deleted {request.IfName} in {request.NetNs}");
                }
                catch (NetlinkException e) { throw Kernel($"deleting {request.IfName} in {request.NetNs}", e); }
            }
            else
            {
                // No pod netns to look into: the pair normally died with it, but a netns kept alive elsewhere
                // (a leaked bind mount) still holds the host end, which carries our deterministic name.
                DeleteHostVeth(cfg, hostName);
            }
        }

        // Keyed by the host veth name alone: works without netns, prevResult or MAC.
        if (cfg.MacSpoofChk) MacSpoofCheck.Remove(hostName);

        // Before the lease goes: a released address must not stay masqueraded for whoever gets it next. With no
        // address known (no prevResult, netns gone) the backend finds the attachment's objects by their tag.
        if (masq is not null) Masquerade.Remove(cfg.MasqBackend, cfg.MasqAttachment(request), masq);

        var ipam = cfg.CreateIpam();
        if (ipam is not null)
            using (Log.Time("ipam.del")) ipam.Del(request, cfg.Conf);
    }

    /// <summary>prevResult's addresses of CNI_IFNAME; empty when there is no usable prevResult (DEL still proceeds).</summary>
    private static List<(IpCidr Subnet, System.Net.IPAddress Address)> PrevResultAddresses(BridgeConfig cfg, string ifName)
    {
        if (cfg.PrevResult is not { ValueKind: System.Text.Json.JsonValueKind.Object } prevJson) return [];
        try
        {
            var prev = CniResult.Parse(prevJson, "prevResult");
            var podIf = prev.Interfaces.FindIndex(i => i.Name == ifName && !string.IsNullOrEmpty(i.Sandbox));
            return MasqueradeTargets(prev.Ips.Where(i => i.Interface is null || i.Interface == podIf).Select(i => i.Address));
        }
        catch (CniException e)
        {
            Log.Warn($"ipMasq: prevResult is unusable ({e.Message}); taking the addresses from {ifName} instead");
            return [];
        }
    }

    /// <summary>Deletes the host end only when it is a veth enslaved to this network's bridge: never another pod's link.</summary>
    private static void DeleteHostVeth(BridgeConfig cfg, string hostName)
    {
        if (cfg.BridgeName.Length == 0) return;
        try
        {
            using var host = RtNetlinkSocket.Open();
            var link = host.GetLink(hostName);
            if (link is null || link.Kind != "veth") return;
            var bridge = host.GetLink(cfg.BridgeName);
            if (bridge is null || link.MasterIndex != bridge.Index) return;
            host.DeleteLink(link.Index);
            Log.Info($"deleted host veth {hostName}");
        }
        catch (NetlinkException e) when (e.Errno is Errno.ENODEV or Errno.ENOENT) { }
        catch (NetlinkException e) { throw Kernel($"deleting host veth {hostName}", e); }
    }
}
