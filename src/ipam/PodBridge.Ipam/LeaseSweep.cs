namespace PodBridge.Ipam;

/// <summary>
/// What the operator commands (gc, doctor, metrics) ask of a lease database, with the proofs automatic
/// reclamation uses (<see cref="LeaseLiveness"/>): a lease is dead only when its boot or its netns provably ended.
/// </summary>
public static class LeaseSweep
{
    /// <summary>One attachment whose pod is provably gone: all its leases, and why.</summary>
    public sealed record DeadOwner(string ContainerId, string IfName, IReadOnlyList<Lease> Leases, string Why);

    /// <summary>Dead attachments of a network (or all networks when null), one entry per (containerID, ifname).</summary>
    public static List<DeadOwner> Dead(IReadOnlyList<Lease> leases, LeaseLiveness liveness)
    {
        var dead = new List<DeadOwner>();
        foreach (var group in leases.GroupBy(l => (l.Network, l.ContainerId, l.IfName)))
        {
            // Every lease of an attachment shares its boot and netns: the first one decides.
            if (liveness.WhyDead(group.First()) is { } why)
                dead.Add(new DeadOwner(group.Key.ContainerId, group.Key.IfName, group.ToList(), why));
        }
        return dead;
    }

    /// <summary>Releases every lease of a dead attachment inside the caller's transaction (commit is the caller's).</summary>
    public static void Release(ILeaseTransaction tx, DeadOwner owner)
    {
        foreach (var l in owner.Leases) tx.Release(l.Network, l.Address);
    }

    /// <summary>Per range set: allocatable addresses and how many of them are held.</summary>
    public static List<(RangeSet Set, UInt128 Size, UInt128 Used)> Usage(ILeaseTransaction tx, IpamSettings settings)
    {
        var usage = new List<(RangeSet, UInt128, UInt128)>();
        foreach (var set in settings.RangeSets)
        {
            var used = UInt128.Zero;
            foreach (var range in set.Ranges)
                used += (UInt128)tx.List(settings.Network, range.Start, range.End).Count(l => l.Address != range.Gateway);
            usage.Add((set, set.Capacity, used));
        }
        return usage;
    }
}
