using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>What a bridge ADD result must say, and that the kernel agrees with it.</summary>
public static partial class Expect
{
    [GeneratedRegex("^veth[0-9a-f]{8}$")]
    public static partial Regex PodBridgeHostVeth();

    [GeneratedRegex("^([0-9a-f]{2}:){5}[0-9a-f]{2}$")]
    private static partial Regex LowerMac();

    public static bool IsPre100(string version) => version is "0.3.0" or "0.3.1" or "0.4.0";

    /// <summary>
    /// The reference layout — interfaces [bridge, host veth, pod iface (sandbox = CNI_NETNS)], ips pointing at 2,
    /// the version's own fields — and the kernel: bridge up, host veth up and a port of the bridge and the pod
    /// iface's peer, pod iface up with the result's MAC and addresses, gateway on the bridge when isGateway,
    /// default route(s) when isDefaultGateway.
    /// </summary>
    public static async Task<ResultView> ResultMatchesKernel(
        JsonObject result, string version, TestNetwork net, TestPod pod, PluginFlavor flavor,
        bool dualStack = false, bool isGateway = true, bool defaultRoute = false)
    {
        var text = result.ToJsonString();
        void Check(bool ok, string what) { if (!ok) throw new XunitException($"{what}\nresult: {text}"); }

        Check((string?)result["cniVersion"] == version, $"result cniVersion must be the config's {version}");
        var ifs = result["interfaces"]?.AsArray() ?? throw new XunitException($"no interfaces\nresult: {text}");
        Check(ifs.Count == 3, "interfaces must be [bridge, host veth, container iface]");

        string Name(int i) => (string?)ifs[i]?["name"] ?? throw new XunitException($"interfaces[{i}] has no name\nresult: {text}");
        string? Mac(int i) => (string?)ifs[i]?["mac"];

        // interfaces[0]: the bridge
        Check(Name(0) == net.Bridge, $"interfaces[0] must be bridge {net.Bridge}");
        var bridge = await Kernel.Link(net.NodeNs, net.Bridge) ?? throw new XunitException($"bridge {net.Bridge} does not exist");
        Check(bridge.Kind == "bridge", $"{net.Bridge} is a {bridge.Kind}, not a bridge");
        Check(bridge.IsUp, $"bridge {net.Bridge} is not up");
        Check(Mac(0) == bridge.Mac, $"interfaces[0].mac {Mac(0)} != kernel {bridge.Mac}");
        Check(ifs[0]?["sandbox"] is null, "the bridge has no sandbox");

        // interfaces[1]: the host veth
        var hostName = Name(1);
        if (flavor.IsPodBridge)
            Check(PodBridgeHostVeth().IsMatch(hostName), $"host veth '{hostName}' must be named veth + 8 hex digits");
        var host = await Kernel.Link(net.NodeNs, hostName) ?? throw new XunitException($"host veth {hostName} does not exist\nresult: {text}");
        Check(host.Kind == "veth", $"{hostName} is a {host.Kind}, not a veth");
        Check(host.Master == net.Bridge, $"{hostName} has master {host.Master}, expected {net.Bridge}");
        Check(host.IsUp, $"host veth {hostName} is not up");
        Check(Mac(1) == host.Mac, $"interfaces[1].mac {Mac(1)} != kernel {host.Mac}");
        Check(ifs[1]?["sandbox"] is null, "the host veth has no sandbox");
        var ports = await Kernel.BridgePorts(net.NodeNs, net.Bridge);
        Check(ports.Any(p => p.Name == hostName), $"`bridge link` does not list {hostName} as a port of {net.Bridge}");

        // interfaces[2]: the pod end
        Check(Name(2) == pod.IfName, $"interfaces[2] must be {pod.IfName}");
        Check((string?)ifs[2]?["sandbox"] == pod.NetNs.Path, $"interfaces[2].sandbox must be {pod.NetNs.Path}");
        var podLink = await Kernel.Link(pod.NetNs.Name, pod.IfName) ?? throw new XunitException($"{pod.IfName} does not exist in {pod.NetNs}");
        Check(podLink.Kind == "veth", $"{pod.IfName} is a {podLink.Kind}, not a veth");
        Check(podLink.IsUp, $"{pod.IfName} is not up");
        Check(Mac(2) is { } m && LowerMac().IsMatch(m), $"interfaces[2].mac '{Mac(2)}' must be lowercase aa:bb:cc:dd:ee:ff");
        Check(Mac(2) == podLink.Mac, $"interfaces[2].mac {Mac(2)} != kernel {podLink.Mac}");
        Check(podLink.PeerIndex == host.Index, $"{pod.IfName}'s peer is ifindex {podLink.PeerIndex}, not {hostName} ({host.Index})");

        // mtu is a 1.1 field; when present it must be true.
        foreach (var (i, link) in new[] { (0, bridge), (1, host), (2, podLink) })
            if (ifs[i]?["mtu"] is JsonValue mtu)
                Check((int)mtu == link.Mtu, $"interfaces[{i}].mtu {mtu} != kernel {link.Mtu}");

        // ips
        var ips = result["ips"]?.AsArray() ?? throw new XunitException($"no ips\nresult: {text}");
        Check(ips.Count == (dualStack ? 2 : 1), $"expected {(dualStack ? 2 : 1)} ips entries");
        var podAddrs = await Kernel.GlobalAddresses(pod.NetNs.Name, pod.IfName);
        var addresses = new List<string>();
        foreach (var ip in ips)
        {
            var address = (string?)ip?["address"] ?? throw new XunitException($"ips entry without address\nresult: {text}");
            var v6 = address.Contains(':');
            Check(ip!["interface"] is JsonValue idx && (int)idx == 2, $"ips[{address}].interface must be 2");
            Check(podAddrs.Any(a => a.Cidr == NormaliseCidr(address)),
                $"{address} is not on {pod.IfName}: kernel has [{string.Join(", ", podAddrs.Select(a => a.Cidr))}]");
            Check(Kernel.AddressOf(address) != (v6 ? net.Gateway6 : net.Gateway4), "a pod must never get the gateway address");
            Check((string?)ip["gateway"] == (v6 ? net.Gateway6 : net.Gateway4), $"ips[{address}].gateway must be the range gateway");
            if (IsPre100(version))
                Check((string?)ip["version"] == (v6 ? "6" : "4"), $"{version} results carry ips[].version");
            else
                Check(ip["version"] is null, $"{version} results must not carry ips[].version");
            addresses.Add(address);
        }
        Check(addresses.Any(a => !a.Contains(':') && a.EndsWith("/24", StringComparison.Ordinal) && a.StartsWith($"10.250.{net.Octet}.", StringComparison.Ordinal)),
            $"expected an address in {net.Subnet4}");

        if (IsPre100(version))
            Check(result["dns"] is JsonObject, $"{version} results always carry a dns object");

        // gateway on the bridge
        var bridgeAddrs = await Kernel.GlobalAddresses(net.NodeNs, net.Bridge);
        var gw4 = $"{net.Gateway4}/24";
        Check(isGateway == bridgeAddrs.Any(a => a.Cidr == gw4),
            isGateway ? $"bridge must carry gateway {gw4}" : $"bridge must not carry {gw4} without isGateway");
        if (dualStack && isGateway)
            Check(bridgeAddrs.Any(a => a.Cidr == $"{net.Gateway6}/64"), $"bridge must carry gateway {net.Gateway6}/64");

        // routes
        var routes4 = await Kernel.Routes(pod.NetNs.Name, 4);
        Check(routes4.Any(r => r.Dst == net.Subnet4 && r.Dev == pod.IfName), $"no connected route {net.Subnet4} dev {pod.IfName} in the pod");
        var resultRoutes = result["routes"]?.AsArray() ?? [];
        var hasDefault4 = routes4.Any(r => r.Dst == "0.0.0.0/0" && r.Gateway == net.Gateway4 && r.Dev == pod.IfName);
        Check(defaultRoute == hasDefault4, defaultRoute ? "isDefaultGateway: pod needs a default route via the gateway" : "no default route expected in the pod");
        Check(defaultRoute == resultRoutes.Any(r => (string?)r?["dst"] == "0.0.0.0/0" && (string?)r?["gw"] == net.Gateway4),
            defaultRoute ? "isDefaultGateway: result.routes must list 0.0.0.0/0 via the gateway" : "result.routes must not list a default route");
        if (dualStack && defaultRoute)
        {
            var routes6 = await Kernel.Routes(pod.NetNs.Name, 6);
            Check(routes6.Any(r => r.Dst == "::/0" && r.Gateway == net.Gateway6), "isDefaultGateway: pod needs an IPv6 default route via the gateway");
        }

        return new ResultView(hostName, addresses, Mac(2)!);
    }

    /// <summary>After DEL: the pod iface and the host veth are gone (the latter may take a moment), the bridge stays.</summary>
    public static async Task Deleted(TestNetwork net, TestPod pod, string hostVeth)
    {
        if (await Kernel.LinkExists(pod.NetNs.Name, pod.IfName))
            throw new XunitException($"{pod.IfName} still exists in {pod.NetNs} after DEL");
        if (!await Kernel.Eventually(async () => !await Kernel.LinkExists(net.NodeNs, hostVeth)))
            throw new XunitException($"host veth {hostVeth} still exists after DEL");
        if (!await Kernel.LinkExists(net.NodeNs, net.Bridge))
            throw new XunitException($"DEL must not delete the bridge {net.Bridge}");
    }

    public static string NormaliseCidr(string cidr)
    {
        var parts = cidr.Split('/');
        return $"{Kernel.AddressOf(parts[0])}/{parts[1]}";
    }
}

/// <summary>The facts of one ADD a test keeps using.</summary>
public sealed record ResultView(string HostVeth, IReadOnlyList<string> Addresses, string PodMac)
{
    public string V4 => Kernel.AddressOf(Addresses.First(a => !a.Contains(':')));
    public string V6 => Kernel.AddressOf(Addresses.First(a => a.Contains(':')));
}
