using System.Net;
using System.Net.Sockets;
using PodBridge.Netlink;

namespace PodBridge.Node;

/// <summary>
/// Keeps the main table's routes to the other nodes' pod CIDRs. The agent's routes carry rtm_protocol
/// <see cref="Protocol"/>; only those are ever replaced or deleted, so an operator's or another daemon's route
/// to the same prefix is left alone (the conflict is logged).
/// </summary>
public sealed class RouteReconciler(Action<string> log)
{
    /// <summary>
    /// rtm_protocol of our routes (`ip route show proto 147`). Unassigned in iproute2's rt_protos and not used by
    /// the routing daemons we know of (bird 12, zebra 11, babel 42, bgp 186–192).
    /// </summary>
    public const byte Protocol = 147;

    /// <returns>How many routes were added, replaced or deleted.</returns>
    public int Reconcile(IReadOnlyList<DesiredRoute> desired)
    {
        using var rt = RtNetlinkSocket.Open();
        var changes = 0;
        foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            var all = rt.ListRoutes(family);
            var ours = all.Where(r => r.Protocol == Protocol).ToList();
            foreach (var want in desired.Where(d => d.Destination.BaseAddress.AddressFamily == family))
            {
                var spec = new RouteSpec(want.Destination.BaseAddress, want.Destination.PrefixLength, want.Gateway, 0, Protocol: Protocol);
                var mine = ours.Find(r => Same(r, want.Destination));
                if (mine is not null)
                {
                    ours.Remove(mine);
                    if (Equals(mine.Gateway, want.Gateway)) continue;
                    rt.ReplaceRoute(spec);
                    log($"route {want.Destination} via {want.Gateway} (node {want.Node}) replaces via {mine.Gateway}");
                    changes++;
                    continue;
                }
                if (all.FirstOrDefault(r => Same(r, want.Destination)) is { } foreign)
                {
                    log($"route {want.Destination} (node {want.Node}): a route with protocol {foreign.Protocol} via {foreign.Gateway} exists; left alone");
                    continue;
                }
                try
                {
                    rt.AddRoute(spec);
                    log($"route {want.Destination} via {want.Gateway} (node {want.Node}) added");
                    changes++;
                }
                catch (NetlinkException e)
                {
                    // Unreachable gateway (ENETUNREACH) for one node must not stop the others.
                    log($"route {want.Destination} via {want.Gateway} (node {want.Node}): {e.Message}");
                }
            }
            foreach (var stale in ours)
            {
                var spec = new RouteSpec(stale.Destination, stale.PrefixLength, null, 0, Protocol: Protocol);
                if (rt.DeleteRoute(spec))
                {
                    log($"route {stale.Destination}/{stale.PrefixLength} via {stale.Gateway} removed (no node has it)");
                    changes++;
                }
            }
        }
        return changes;
    }

    private static bool Same(RouteInfo route, IPNetwork destination) =>
        route.PrefixLength == destination.PrefixLength && route.Destination.Equals(destination.BaseAddress);
}
