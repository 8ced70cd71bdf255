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
        var cfg = BridgeConfig.From(conf, request);
        var hostName = HostVeth.Name(request.ContainerId, request.IfName);

        using (var podNs = TryOpenPodNetNs(request.NetNs))
        {
            if (podNs is not null)
            {
                using var _ = Log.Time("netlink.del");
                try
                {
                    using var pod = RtNetlinkSocket.OpenIn(podNs);
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

        var ipam = cfg.CreateIpam();
        if (ipam is not null)
            using (Log.Time("ipam.del")) ipam.Del(request, conf);
    }

    /// <summary>Deletes the host end only when it is a veth enslaved to this network's bridge: never another pod's link.</summary>
    private static void DeleteHostVeth(BridgeConfig cfg, string hostName)
    {
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
