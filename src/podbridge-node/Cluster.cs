using System.Net;
using System.Net.Sockets;
using k8s.Models;

namespace PodBridge.Node;

/// <summary>What the agent needs of one Node: its pod CIDRs and its InternalIP of each family.</summary>
public sealed record ClusterNode(string Name, IReadOnlyList<IPNetwork> PodCidrs, IPAddress? InternalV4, IPAddress? InternalV6)
{
    public IPAddress? InternalIpFor(AddressFamily family) =>
        family == AddressFamily.InterNetwork ? InternalV4 : InternalV6;

    /// <summary>Invalid entries are skipped with a log line instead of stopping the agent: one bad Node must not cut off the others.</summary>
    public static ClusterNode From(V1Node node, Action<string> log)
    {
        var name = node.Metadata?.Name ?? "";
        var cidrs = new List<IPNetwork>();
        var specCidrs = node.Spec?.PodCIDRs is { Count: > 0 } list ? list
            : node.Spec?.PodCIDR is { Length: > 0 } single ? [single] : [];
        foreach (var text in specCidrs)
        {
            if (IPNetwork.TryParse(text, out var net)) cidrs.Add(net);
            else log($"node {name}: ignoring podCIDR '{text}': not a CIDR");
        }
        IPAddress? v4 = null, v6 = null;
        foreach (var address in node.Status?.Addresses ?? [])
        {
            if (address.Type != "InternalIP" || !IPAddress.TryParse(address.Address, out var ip)) continue;
            if (ip.AddressFamily == AddressFamily.InterNetwork) v4 ??= ip;
            else if (ip.AddressFamily == AddressFamily.InterNetworkV6) v6 ??= ip;
        }
        return new ClusterNode(name, cidrs, v4, v6);
    }
}

/// <summary>A route the agent wants on its node: another node's pod CIDR via that node's InternalIP.</summary>
public sealed record DesiredRoute(IPNetwork Destination, IPAddress Gateway, string Node);

/// <summary>Everything the agent derives from the Nodes; reconciling it twice changes nothing the second time.</summary>
public sealed record DesiredState(
    ClusterNode? Self,
    IReadOnlyList<DesiredRoute> Routes,
    IReadOnlyList<IPNetwork> ClusterCidrs)
{
    public static DesiredState From(string selfName, IReadOnlyCollection<ClusterNode> nodes, Action<string> log)
    {
        ClusterNode? self = null;
        var routes = new List<DesiredRoute>();
        var cluster = new SortedSet<IPNetwork>(Comparer<IPNetwork>.Create((a, b) => string.CompareOrdinal(a.ToString(), b.ToString())));
        foreach (var node in nodes.OrderBy(n => n.Name, StringComparer.Ordinal))
        {
            foreach (var cidr in node.PodCidrs) cluster.Add(cidr);
            if (node.Name == selfName)
            {
                self = node;
                continue;
            }
            foreach (var cidr in node.PodCidrs)
            {
                var family = cidr.BaseAddress.AddressFamily;
                if (node.InternalIpFor(family) is { } gateway) routes.Add(new DesiredRoute(cidr, gateway, node.Name));
                else log($"node {node.Name}: no {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} InternalIP for pod CIDR {cidr}; no route");
            }
        }
        // Two nodes claiming one CIDR (a stale Node object during a rename): keep the first by name, say so.
        var unique = new List<DesiredRoute>();
        foreach (var route in routes)
        {
            if (unique.Find(r => r.Destination.Equals(route.Destination)) is { } other)
                log($"pod CIDR {route.Destination} is claimed by {other.Node} and {route.Node}; routing it to {other.Node}");
            else unique.Add(route);
        }
        return new DesiredState(self, unique, [.. cluster]);
    }
}
