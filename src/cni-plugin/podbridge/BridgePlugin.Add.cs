using System.Net;
using System.Net.Sockets;
using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

public sealed partial class BridgePlugin
{
    public CniResult Add(CniRequest request, NetConf conf)
    {
        var cfg = BridgeConfig.From(conf, request);
        using var podNs = OpenPodNetNs(request);
        // Declared before the rollback so it is disposed after it: the rollback's undos delete links through it.
        using var host = RtNetlinkSocket.Open();
        using var rollback = new Rollback();

        // The IPAM call runs while the links are created (PendingIpam). Its undo is pushed first, so it runs last: the
        // links are gone before the allocation (when one was made) is released.
        var ipam = cfg.CreateIpam();
        PendingIpam? pendingIpam = null;
        if (ipam is not null)
        {
            pendingIpam = PendingIpam.Start(() =>
            {
                using (Log.Time("ipam.add")) return ipam.Add(request, cfg.Conf);
            });
            rollback.Push("IPAM allocation", () =>
            {
                if (pendingIpam.Succeeded) ipam.Del(request, cfg.Conf);
            });
        }

        try
        {
            return AddLinks(request, cfg, podNs, host, rollback, pendingIpam);
        }
        catch (Exception) when (pendingIpam is { Succeeded: false })
        {
            // The IPAM's error is the one to report (an exhausted range, a bad static request), whatever the link work
            // ran into meanwhile; the rollback removes the links it created.
            pendingIpam.Result();
            throw;
        }
    }

    private CniResult AddLinks(CniRequest request, BridgeConfig cfg, NetNsHandle podNs, RtNetlinkSocket host, Rollback rollback,
        PendingIpam? pendingIpam)
    {
        // A bridge this ADD has to create is created only once the IPAM has succeeded, so a failing IPAM call (a bad
        // ipam section, an exhausted range, a taken static address) still leaves nothing behind; the overlap is lost
        // only for the first pod of a network on a node.
        var bridge = EnsureBridge(host, cfg, beforeCreating: () => pendingIpam?.Result());

        using var pod = RtNetlinkSocket.OpenIn(podNs);
        if (pod.GetLink(request.IfName) is not null)
            throw new CniException(CniErrorCode.InterfaceExists,
                $"{CniEnvironment.IfNameVar}={request.IfName} already exists in {request.NetNs}");

        var hostName = HostVeth.Name(request.ContainerId, request.IfName);
        using (Log.Time("netlink.veth"))
        {
            try
            {
                host.CreateVeth(hostName, request.IfName, podNs, cfg.Mtu, cfg.Mac);
            }
            catch (NetlinkException e) when (e.Errno == Errno.EEXIST && pendingIpam is { Succeeded: true } && RemoveStaleHostVeth(host, hostName, bridge))
            {
                try { host.CreateVeth(hostName, request.IfName, podNs, cfg.Mtu, cfg.Mac); }
                catch (NetlinkException again) { throw Kernel($"creating veth {hostName} <-> {request.IfName}", again); }
            }
            catch (NetlinkException e) when (e.Errno == Errno.EEXIST)
            {
                throw new CniException(CniErrorCode.InterfaceExists,
                    $"host veth {hostName} for {request.ContainerId}/{request.IfName} already exists " +
                    "(a previous ADD without DEL, or a name collision); run DEL for this container first");
            }
            catch (NetlinkException e) { throw Kernel($"creating veth {hostName} <-> {request.IfName}", e); }
        }
        // Deleting either end removes the pair, including the pod end.
        rollback.Push($"veth {hostName}", () => host.DeleteLink(hostName));

        LinkInfo hostLink, podLink;
        using (Log.Time("netlink.attach"))
        {
            try
            {
                hostLink = host.GetLink(hostName) ?? throw new CniException(CniErrorCode.NetlinkFailure, $"veth {hostName} vanished after creation");
                host.SetMaster(hostLink.Index, bridge.Index);
                if (cfg.HairpinMode || cfg.PortIsolation)
                    host.SetBridgePort(hostLink.Index, cfg.HairpinMode ? true : null, cfg.PortIsolation ? true : null);
                ConfigurePortVlans(host, hostLink.Index, hostName, cfg);
                host.SetLinkUp(hostLink.Index); // MAC and MTU are what creation gave it: no re-read needed
                // A bridge without an explicit address takes its lowest port MAC: report what it has now.
                bridge = host.GetLink(bridge.Index) ?? bridge;
                podLink = pod.GetLink(request.IfName) ?? throw new CniException(CniErrorCode.NetlinkFailure, $"{request.IfName} vanished from {request.NetNs} after creation");
            }
            catch (NetlinkException e) { throw Kernel($"attaching {hostName} to bridge {cfg.BridgeName}", e); }
        }

        if (cfg.MacSpoofChk)
        {
            MacSpoofCheck.Add(cfg.MasqAttachment(request), hostName, podLink.MacString);
            rollback.Push("MAC spoof check", () => MacSpoofCheck.Remove(hostName));
        }

        var ipamResult = pendingIpam?.Result() ?? new CniResult();
        var result = new CniResult
        {
            Interfaces =
            {
                new CniInterface { Name = bridge.Name, Mac = bridge.MacString, Mtu = bridge.Mtu },
                new CniInterface { Name = hostLink.Name, Mac = hostLink.MacString, Mtu = hostLink.Mtu },
                new CniInterface { Name = podLink.Name, Mac = podLink.MacString, Mtu = podLink.Mtu, Sandbox = request.NetNs },
            },
            Dns = ipamResult.Dns.IsEmpty ? cfg.Dns : ipamResult.Dns,
        };

        ConfigurePod(pod, podLink, cfg, ipamResult, result);
        if (cfg.IpMasq && result.Ips.Count > 0)
        {
            var masq = MasqueradeTargets(result.Ips.Select(i => i.Address));
            var (backend, who) = (cfg.MasqBackend, cfg.MasqAttachment(request));
            Masquerade.Add(backend, who, masq);
            rollback.Push($"masquerading ({backend})", () => Masquerade.Remove(backend, who, masq));
        }
        if (cfg.IsGateway && ipamResult.Ips.Any(i => i.Gateway is not null))
        {
            var gatewayLink = bridge;
            if (cfg.Vlan != 0)
            {
                // Like the reference: the VLAN's gateway interface is listed after the pod's interface.
                gatewayLink = EnsureVlanGateway(host, bridge, cfg);
                result.Interfaces.Add(new CniInterface { Name = gatewayLink.Name, Mac = gatewayLink.MacString });
            }
            ConfigureGateway(host, gatewayLink, cfg, ipamResult);
        }
        EnsureHostSysctls(cfg.IsGateway && result.Ips.Any(i => !i.Address.IsV6), cfg.IsGateway && result.Ips.Any(i => i.Address.IsV6));

        rollback.Commit();
        Log.Info($"added {podLink.Name} ({string.Join(", ", result.Ips.Select(i => i.Address))}) via {hostName} on {bridge.Name}");
        return result;
    }

    /// <summary>
    /// The host end of this very (containerID, ifname) still exists although the IPAM just proved the previous
    /// attachment dead (its netns is gone): the kernel tears down a deleted netns's veths asynchronously, so a
    /// quick re-ADD can meet the dying link. Only a veth on this network's bridge is removed, never anything else.
    /// </summary>
    private static bool RemoveStaleHostVeth(RtNetlinkSocket host, string hostName, LinkInfo bridge)
    {
        var link = host.GetLink(hostName);
        if (link is null) return true;
        if (link.Kind != "veth" || link.MasterIndex != bridge.Index) return false;
        try { host.DeleteLink(link.Index); }
        catch (NetlinkException e) when (e.Errno is Errno.ENODEV or Errno.ENOENT) { }
        Log.Warn($"removed stale host veth {hostName} of a dead previous attachment");
        return true;
    }

    /// <summary>Create the bridge or accept an existing one; concurrent ADDs may race to create it.</summary>
    private static LinkInfo EnsureBridge(RtNetlinkSocket host, BridgeConfig cfg, Action beforeCreating)
    {
        using var _ = Log.Time("netlink.bridge");
        try
        {
            var link = host.GetLink(cfg.BridgeName);
            if (link is null)
            {
                beforeCreating();
                // A fixed random MAC (locally administered): otherwise the bridge follows its lowest port MAC and the
                // gateway's MAC changes under running pods as pods come and go.
                var mac = new byte[6];
                Random.Shared.NextBytes(mac);
                mac[0] = (byte)((mac[0] & 0xfe) | 0x02);
                // With VLANs the bridge is born filtering: a kernel without it refuses the whole request, creating nothing.
                try { host.CreateBridge(cfg.BridgeName, cfg.Mtu, mac, vlanFiltering: cfg.UsesVlans); }
                catch (NetlinkException e) when (e.Errno == Errno.EEXIST) { /* another ADD created it first */ }
                catch (NetlinkException e) when (e.Errno == Errno.EOPNOTSUPP && cfg.UsesVlans) { throw VlanKernelError($"creating bridge {cfg.BridgeName}", e); }
                link = host.GetLink(cfg.BridgeName)
                    ?? throw new CniException(CniErrorCode.NetlinkFailure, $"bridge {cfg.BridgeName} vanished after creation");
            }
            if (link.Kind != "bridge")
                throw new CniException(CniErrorCode.InvalidNetworkConfig,
                    $"bridge: {cfg.BridgeName} exists but is a {link.Kind ?? "device"} link, not a bridge");
            if (cfg.UsesVlans)
            {
                try { host.SetBridgeVlanFiltering(link.Index, true); }
                catch (NetlinkException e) { throw VlanKernelError($"turning on VLAN filtering on bridge {cfg.BridgeName}", e); }
            }
            if (cfg.PromiscMode && !link.Promisc) host.SetPromisc(link.Index, true);
            if (!link.IsUp) host.SetLinkUp(link.Index);
            return link;
        }
        catch (NetlinkException e) { throw Kernel($"setting up bridge {cfg.BridgeName}", e); }
    }

    /// <summary>Addresses, link up and routes inside the pod netns; fills result.ips/routes.</summary>
    private static void ConfigurePod(RtNetlinkSocket pod, LinkInfo podLink, BridgeConfig cfg, CniResult ipamResult, CniResult result)
    {
        using var _ = Log.Time("netlink.pod");
        try
        {
            foreach (var ip in ipamResult.Ips)
            {
                // IFA_F_NODAD: the address is usable at once instead of ~1-2 s of IPv6 DAD (enabledad turns DAD on).
                pod.AddAddress(podLink.Index, ip.Address.Address, ip.Address.PrefixLength, noDad: !cfg.EnableDad);
                result.Ips.Add(new CniIpConfig { Address = ip.Address, Gateway = ip.Gateway, Interface = 2 });
            }
            if (cfg.DisableContainerInterface)
            {
                // The pod (a VM's launcher, usually) brings the interface up itself. A down link has no connected
                // routes, so the kernel would refuse any route through it: none are installed or reported.
                if (ipamResult.Routes.Count > 0 || cfg.IsDefaultGateway)
                    Log.Info($"disableContainerInterface: {podLink.Name} stays down; its routes are not installed");
                return;
            }
            pod.SetLinkUp(podLink.Index);

            var routes = new List<CniRoute>(ipamResult.Routes);
            if (cfg.IsDefaultGateway)
            {
                foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                {
                    var gw = ipamResult.Ips.FirstOrDefault(i => i.Address.Address.AddressFamily == family && i.Gateway is not null)?.Gateway;
                    if (gw is null) continue;
                    var any = family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
                    if (routes.Any(r => r.Dst.PrefixLength == 0 && r.Dst.Address.AddressFamily == family)) continue;
                    routes.Add(new CniRoute { Dst = new IpCidr(any, 0), Gw = gw });
                }
            }
            foreach (var route in routes)
            {
                var family = route.Dst.Address.AddressFamily;
                var gw = route.Gw ?? ipamResult.Ips.FirstOrDefault(i => i.Address.Address.AddressFamily == family)?.Gateway;
                // The kernel rejects host bits in a route destination; configs sometimes carry them (10.96.1.1/12).
                pod.AddRoute(new RouteSpec(Network(route.Dst), route.Dst.PrefixLength, gw, podLink.Index));
                result.Routes.Add(route);
            }
        }
        catch (NetlinkException e) { throw Kernel($"configuring {podLink.Name} in the pod netns", e); }
    }

    /// <summary>
    /// The gateway address on the bridge (ensureAddress): kept when already there; another address of the same
    /// subnet is an error unless forceAddress, which replaces it.
    /// </summary>
    private static void ConfigureGateway(RtNetlinkSocket host, LinkInfo bridge, BridgeConfig cfg, CniResult ipamResult)
    {
        using var _ = Log.Time("netlink.gateway");
        try
        {
            var existing = host.ListAddresses(bridge.Index);
            foreach (var ip in ipamResult.Ips)
            {
                if (ip.Gateway is not { } gw) continue;
                var prefix = ip.Address.PrefixLength;
                if (existing.Any(a => a.Address.Equals(gw) && a.PrefixLength == prefix)) continue;
                foreach (var other in existing.Where(a => !a.Address.Equals(gw) && SameSubnet(a.Address, gw, Math.Min(prefix, a.PrefixLength))))
                {
                    if (other.Address.IsIPv6LinkLocal) continue;
                    if (!cfg.ForceAddress)
                        throw new CniException(CniErrorCode.InvalidNetworkConfig,
                            $"bridge {bridge.Name} already has {other.Address}/{other.PrefixLength} in the subnet of gateway {gw}/{prefix}; set forceAddress to replace it");
                    host.DeleteAddress(bridge.Index, other.Address, other.PrefixLength);
                }
                try { host.AddAddress(bridge.Index, gw, prefix, noDad: true); }
                catch (NetlinkException e) when (e.Errno == Errno.EEXIST) { /* a concurrent ADD added it */ }
            }
        }
        catch (NetlinkException e) { throw Kernel($"adding the gateway address to bridge {bridge.Name}", e); }
    }
}
