using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

public sealed partial class BridgePlugin
{
    /// <summary>
    /// Idempotent and best effort (SPEC: DEL must succeed when things are already gone). An address is never handed
    /// out while a live link still uses it: the pod interface is set down first (from then on it neither sends nor
    /// answers for the address), its MAC spoof check and masquerading are removed, and only then is the lease
    /// released — on a second thread while the kernel deletes the link, which takes tens of milliseconds (an RCU
    /// grace period; PendingIpam). Without a pod netns the lease is released after the host end is gone.
    /// containerd sends DEL twice, the second with an empty CNI_NETNS and no prevResult.
    /// </summary>
    public void Del(CniRequest request, NetConf conf)
    {
        var cfg = BridgeConfig.ForTeardown(conf);
        var hostName = HostVeth.Name(request.ContainerId, request.IfName);
        // ipMasq: the pod's addresses come from prevResult, else (CNI 0.3.x, containerd's second DEL) from the pod
        // interface just before it goes, as the reference reads them.
        var masq = cfg.IpMasq ? PrevResultAddresses(cfg, request.IfName) : null;
        var ipam = cfg.CreateIpam();
        PendingIpam? release = null;

        // What must be gone before the lease is: the MAC spoof check (keyed by the host veth name alone: works without
        // netns, prevResult or MAC) and the masquerading, so a released address does not stay masqueraded for whoever
        // gets it next (with no address known, the backend finds the attachment's objects by their tag).
        void RemoveFilters()
        {
            if (cfg.MacSpoofChk) MacSpoofCheck.Remove(hostName);
            if (masq is not null) Masquerade.Remove(cfg.MasqBackend, cfg.MasqAttachment(request), masq);
        }

        try
        {
            using (var podNs = TryOpenPodNetNs(request.NetNs))
            {
                if (podNs is not null)
                {
                    using var _ = Log.Time("netlink.del");
                    try
                    {
                        using var pod = RtNetlinkSocket.OpenIn(podNs);
                        var link = pod.GetLink(request.IfName);
                        if (masq is { Count: 0 } && link is not null)
                            masq = MasqueradeTargets(pod.ListAddresses(link.Index).Select(a => new IpCidr(a.Address, a.PrefixLength)));
                        if (link is not null && link.IsUp) pod.SetLinkDown(link.Index);
                        RemoveFilters();
                        if (ipam is not null) release = PendingIpam.Start(() => Release(ipam, request, cfg));
                        if (pod.DeleteLink(request.IfName)) Log.Info($"deleted {request.IfName} in {request.NetNs}");
                    }
                    catch (NetlinkException e) when (e.Errno is Errno.ENODEV)
                    {
                        // Gone between the look and the request (a netns being torn down): nothing left to delete.
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
        }
        finally
        {
            // A DEL answers only when its release is done, whatever happened to the link.
            _ = release?.Succeeded;
        }

        if (release is not null)
        {
            release.Result(); // the release's error, if it had one
            return;
        }
        RemoveFilters();
        if (ipam is not null) Release(ipam, request, cfg);
    }

    private static CniResult Release(ICniPlugin ipam, CniRequest request, BridgeConfig cfg)
    {
        using (Log.Time("ipam.del")) ipam.Del(request, cfg.Conf);
        return new CniResult();
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
