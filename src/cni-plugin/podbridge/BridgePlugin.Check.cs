using System.Net.Sockets;
using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

public sealed partial class BridgePlugin
{
    /// <summary>
    /// Verifies prevResult against the kernel and the IPAM: bridge, host veth as its port and the pod end's peer,
    /// the pod interface with its MAC, every address and route. The first mismatch is reported by name (code 106).
    /// </summary>
    public void Check(CniRequest request, NetConf conf)
    {
        var cfg = BridgeConfig.From(conf, request);
        if (cfg.PrevResult is not { } prevJson || prevJson.ValueKind != System.Text.Json.JsonValueKind.Object)
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "prevResult is required for CHECK");
        var prev = CniResult.Parse(prevJson, "prevResult");

        // The IPAM's check runs while the kernel is read (PendingIpam); when both fail, the IPAM's error is reported.
        var ipam = cfg.CreateIpam();
        var pendingIpam = ipam is null ? null : PendingIpam.Start(() =>
        {
            using (Log.Time("ipam.check")) ipam.Check(request, cfg.Conf);
            return new CniResult();
        });
        try
        {
            CheckKernel(request, cfg, prev);
        }
        catch (Exception) when (pendingIpam is { Succeeded: false })
        {
            pendingIpam.Result();
            throw;
        }
        pendingIpam?.Result();
    }

    private static void CheckKernel(CniRequest request, BridgeConfig cfg, CniResult prev)
    {
        using var podNs = OpenPodNetNs(request);
        try
        {
            using var host = RtNetlinkSocket.Open();
            using var pod = RtNetlinkSocket.OpenIn(podNs);

            var bridge = host.GetLink(cfg.BridgeName) ?? throw Mismatch($"bridge {cfg.BridgeName} does not exist");
            if (bridge.Kind != "bridge") throw Mismatch($"{cfg.BridgeName} is not a bridge");
            // Only a promiscMode that was asked for is required: another network on the same bridge may have set it.
            if (cfg.PromiscMode && !bridge.Promisc) throw Mismatch($"bridge {cfg.BridgeName} is not in promiscuous mode (promiscMode)");

            var podIfIndex = prev.Interfaces.FindIndex(i => i.Name == request.IfName && !string.IsNullOrEmpty(i.Sandbox));
            if (podIfIndex < 0) throw Mismatch($"prevResult has no interface {request.IfName} with a sandbox");
            var expected = prev.Interfaces[podIfIndex];
            var podLink = pod.GetLink(request.IfName) ?? throw Mismatch($"{request.IfName} does not exist in {request.NetNs}");
            if (podLink.Kind != "veth") throw Mismatch($"{request.IfName} in {request.NetNs} is not a veth");
            if (expected.Mac is not null && !string.Equals(expected.Mac, podLink.MacString, StringComparison.OrdinalIgnoreCase))
                throw Mismatch($"{request.IfName} has MAC {podLink.MacString}, prevResult says {expected.Mac}");
            if (cfg.Mtu is int mtu && podLink.Mtu != mtu) throw Mismatch($"{request.IfName} has MTU {podLink.Mtu}, config says {mtu}");

            var hostName = HostVeth.Name(request.ContainerId, request.IfName);
            var hostLink = host.GetLink(hostName) ?? throw Mismatch($"host veth {hostName} does not exist");
            if (podLink.ParentIndex != hostLink.Index) throw Mismatch($"{request.IfName}'s peer is not host veth {hostName}");
            if (hostLink.MasterIndex != bridge.Index) throw Mismatch($"host veth {hostName} is not a port of bridge {cfg.BridgeName}");
            if (hostLink.BridgePort is { } port)
            {
                if (port.Hairpin != cfg.HairpinMode)
                    throw Mismatch($"bridge port {hostName} has hairpin mode {(port.Hairpin ? "on" : "off")}, config says hairpinMode {cfg.HairpinMode.ToString().ToLowerInvariant()}");
                if (port.Isolated != cfg.PortIsolation)
                    throw Mismatch($"bridge port {hostName} is {(port.Isolated ? "" : "not ")}isolated, config says portIsolation {cfg.PortIsolation.ToString().ToLowerInvariant()}");
            }

            if (cfg.MacSpoofChk) MacSpoofCheck.Verify(hostName, podLink.MacString);
            VerifyPortVlans(host, hostLink, cfg);

            var addresses = pod.ListAddresses(podLink.Index);
            foreach (var ip in prev.Ips.Where(i => i.Interface is null || i.Interface == podIfIndex))
                if (!addresses.Any(a => a.Address.Equals(ip.Address.Address) && a.PrefixLength == ip.Address.PrefixLength))
                    throw Mismatch($"{request.IfName} is missing address {ip.Address}");

            if (prev.Routes.Count > 0)
            {
                var routes = pod.ListRoutes(AddressFamily.InterNetwork).Concat(pod.ListRoutes(AddressFamily.InterNetworkV6)).ToList();
                foreach (var r in prev.Routes)
                    if (!routes.Any(k => k.Destination.Equals(Network(r.Dst)) && k.PrefixLength == r.Dst.PrefixLength
                                         && (r.Gw is null || r.Gw.Equals(k.Gateway))))
                        throw Mismatch($"route {r.Dst}{(r.Gw is null ? "" : $" via {r.Gw}")} is missing in {request.NetNs}");
            }
        }
        catch (NetlinkException e) { throw Kernel("reading kernel state for CHECK", e); }

        if (cfg.IpMasq)
        {
            var podIf = prev.Interfaces.FindIndex(i => i.Name == request.IfName && !string.IsNullOrEmpty(i.Sandbox));
            var masq = MasqueradeTargets(prev.Ips.Where(i => i.Interface is null || i.Interface == podIf).Select(i => i.Address));
            if (masq.Count > 0) Masquerade.Verify(cfg.MasqBackend, cfg.MasqAttachment(request), masq);
        }

        static CniException Mismatch(string what) => new(CniErrorCode.CheckFailed, $"CHECK: {what}");
    }

    public void Gc(CniRequest request, NetConf conf)
    {
        var cfg = BridgeConfig.ForTeardown(conf);
        // Masquerade state of attachments the runtime no longer lists, whatever IPAM (and backend) made them.
        if (cfg.IpMasq)
        {
            try { Masquerade.Gc(cfg.Network, cfg.ValidAttachments); }
            catch (CniException e) { Log.Warn($"GC: {e.Message}"); }
        }
        if (cfg.MacSpoofChk)
        {
            try { MacSpoofCheck.Gc(cfg.Network, Masquerade.ValidTags(cfg.ValidAttachments).Contains); }
            catch (CniException e) { Log.Warn($"GC: {e.Message}"); }
        }
        switch (cfg.CreateIpam())
        {
            case Ipam.PodBridgeIpam embedded:
                // Also remove host ends of attachments the runtime no longer knows (their netns may be leaked).
                foreach (var (containerId, ifName) in embedded.GcReleased(request, cfg.Conf))
                {
                    try { DeleteHostVeth(cfg, HostVeth.Name(containerId, ifName)); }
                    catch (CniException e) { Log.Warn($"GC: {e.Message}"); }
                }
                break;
            case { } delegated:
                delegated.Gc(request, cfg.Conf);
                break;
        }
    }

    public void Status(CniRequest request, NetConf conf)
    {
        var cfg = BridgeConfig.From(conf, request);
        cfg.CreateIpam()?.Status(request, cfg.Conf);
    }
}
