using System.Text.Json;
using PodBridge.Cni;
using PodBridge.Ipam.Warm;

namespace PodBridge.Ipam;

/// <summary>
/// podbridge's IPAM (host-local's config schema), called in-process by the bridge plugin and wrapped by the
/// podbridge-ipam executable. Each verb is one store transaction: ADD either reserves one address per range
/// set or changes nothing.
/// </summary>
public sealed class PodBridgeIpam : ICniPlugin
{
    private readonly Func<IpamSettings, ILeaseStore> _storeFactory;
    private readonly IHostProbe _probe;

    /// <summary>ADD, CHECK and DEL go to `podbridge-ipam serve` first when it runs for the data dir.</summary>
    private readonly bool _warm;

    /// <summary>
    /// Production: a LiteDB store in each network's dataDir, through the warm server of that dir when there is one
    /// (<see cref="WarmClient"/>), in this process otherwise.
    /// </summary>
    public PodBridgeIpam() : this(s => new LiteDbLeaseStore(s.DataDir)) => _warm = true;

    /// <summary>Tests: any store, e.g. one <see cref="InMemoryLeaseStore"/> shared across calls.</summary>
    public PodBridgeIpam(Func<IpamSettings, ILeaseStore> storeFactory) : this(storeFactory, LinuxHostProbe.Instance) { }

    internal PodBridgeIpam(Func<IpamSettings, ILeaseStore> storeFactory, IHostProbe probe)
    {
        _storeFactory = storeFactory;
        _probe = probe;
    }

    public CniResult Add(CniRequest r, NetConf c)
    {
        var settings = IpamSettings.From(c);
        var lost = false;
        if (_warm)
        {
            switch (WarmClient.Call(settings.DataDir, CniVerb.Add, r, out var served))
            {
                case WarmClient.Outcome.Answered: return served!;
                case WarmClient.Outcome.Lost: lost = true; break;
            }
        }
        return Add(r, c, settings, lost);
    }

    /// <param name="retryOfLost">
    /// The warm server may have committed this very ADD before its answer was lost: leases of this attachment in
    /// this same netns (and boot) are then that ADD's, and their result is returned instead of "duplicate".
    /// </param>
    private CniResult Add(CniRequest r, NetConf c, IpamSettings settings, bool retryOfLost)
    {
        var wanted = StaticRequests.AssignToSets(StaticRequests.From(r, c), settings.RangeSets);
        var netns = IdentifyNetNs(r);
        var network = settings.Network;
        var template = new Lease(network, default, 0, r.ContainerId, r.IfName)
        {
            PodNamespace = r.Args.PodNamespace,
            PodName = r.Args.PodName,
            BootId = _probe.BootId,
            NetNsPath = r.NetNs,
            NetNs = netns,
            Created = DateTimeOffset.UtcNow,
        };

        var result = new CniResult { Routes = [.. settings.Routes], Dns = settings.Dns };
        using var tx = _storeFactory(settings).Begin();
        var allocating = Log.Time("ipam.allocate");
        var liveness = new LeaseLiveness(_probe);
        var allocator = new RangeAllocator(tx, network);

        // A second ADD without DEL is an error, unless the first attachment provably died (reboot, netns gone):
        // then its leases are the leak this ADD replaces.
        var existing = tx.GetByOwner(network, r.ContainerId, r.IfName);
        if (existing.Count > 0)
        {
            if (retryOfLost && existing.All(l => l.NetNs == netns && l.BootId == _probe.BootId) && ResultOf(settings, existing) is { } done)
            {
                Log.Info($"{r.ContainerId}/{r.IfName} already holds {string.Join(", ", existing.Select(l => l.Address))}: the warm IPAM server committed this ADD before its answer was lost");
                return done;
            }
            var why = liveness.WhyDead(existing[0]);
            if (why is null)
                throw new CniException(CniErrorCode.DuplicateAllocation,
                    $"{r.ContainerId}/{r.IfName} already holds {string.Join(", ", existing.Select(l => l.Address).Order())} in network {network}; " +
                    "a second ADD needs a DEL first");
            foreach (var old in existing) tx.Release(network, old.Address);
            Log.Info($"released stale lease(s) {string.Join(", ", existing.Select(l => l.Address))} of {r.ContainerId}/{r.IfName}: {why}");
        }

        foreach (var set in settings.RangeSets)
        {
            IpAddr address;
            IpRange range;
            if (wanted[set.Index] is { } want)
            {
                range = set.RangeFor(want)!;
                if (tx.Get(network, want) is { } holder)
                {
                    var why = liveness.WhyDead(holder);
                    if (why is null)
                        throw StaticRequests.Unavailable($"requested address {want} is taken: {holder}");
                    ReleaseOwner(tx, holder, why);
                }
                address = want;
                Reserve(tx, template with { Address = want, RangeSet = set.Index });
            }
            else
            {
                var free = allocator.FindFree(set);
                if (free is null && Reclaim(tx, liveness, network, set) > 0) free = allocator.FindFree(set);
                if (free is null)
                    throw new CniException(CniErrorCode.RangeExhausted,
                        $"no free address in {set} of network {network}: every address is held by a live attachment");
                (address, range) = free.Value;
                Reserve(tx, template with { Address = address, RangeSet = set.Index });
                tx.SetCursor(network, set.Index, address);
            }
            result.Ips.Add(new CniIpConfig
            {
                Address = new IpCidr(address.ToIPAddress(), range.Prefix),
                Gateway = range.Gateway.ToIPAddress(),
            });
        }
        allocating.Dispose();
        tx.Commit();
        return result;
    }

    public void Del(CniRequest r, NetConf c)
    {
        var settings = IpamSettings.ForRelease(c);
        // DEL is idempotent: after a lost answer the in-process DEL just finds less (or nothing) to release.
        // Also the bridge's rollback of a failed ADD: r is then the ADD's request, the verb is DEL.
        if (_warm && WarmClient.Call(settings.DataDir, CniVerb.Del, r, out _) == WarmClient.Outcome.Answered) return;
        using var tx = _storeFactory(settings).Begin();
        var leases = tx.GetByOwner(settings.Network, r.ContainerId, r.IfName);
        if (leases.Count == 0) return; // nothing to release: DEL succeeds, and without a commit (no fsync)
        foreach (var l in leases) tx.Release(settings.Network, l.Address);
        tx.Commit();
    }

    public void Check(CniRequest r, NetConf c)
    {
        var settings = IpamSettings.From(c);
        if (_warm && WarmClient.Call(settings.DataDir, CniVerb.Check, r, out _) == WarmClient.Outcome.Answered) return;
        IReadOnlyList<Lease> leases;
        using (var tx = _storeFactory(settings).Begin())
            leases = tx.GetByOwner(settings.Network, r.ContainerId, r.IfName);
        if (leases.Count == 0)
            throw CheckFailed($"{r.ContainerId}/{r.IfName} holds no address in network {settings.Network}");

        if (c.PrevResult is not { ValueKind: JsonValueKind.Object } prevJson) return;
        var prev = CniResult.Parse(prevJson, "prevResult");
        var prevAddresses = prev.Ips.Select(i => IpAddr.FromIPAddress(i.Address.Address)).ToList();
        foreach (var a in prevAddresses)
            if (settings.RangeSets.Any(s => s.RangeFor(a) is not null) && !leases.Any(l => l.Address == a))
                throw CheckFailed($"prevResult has {a}, but it is not leased to {r.ContainerId}/{r.IfName}");
        foreach (var l in leases)
            if (!prevAddresses.Contains(l.Address))
                throw CheckFailed($"{r.ContainerId}/{r.IfName} holds {l.Address}, which prevResult does not list");
    }

    public void Gc(CniRequest r, NetConf c) => GcReleased(r, c);

    /// <summary>Releases every lease of this network whose attachment is not in the GC list; returns those attachments.</summary>
    public IReadOnlyList<(string ContainerId, string IfName)> GcReleased(CniRequest r, NetConf c)
    {
        var settings = IpamSettings.ForRelease(c);
        var valid = c.GcValidAttachments
            .Where(a => a.ContainerId is not null && a.IfName is not null)
            .Select(a => (a.ContainerId!, a.IfName!))
            .ToHashSet();
        var released = new List<(string, string)>();
        using var tx = _storeFactory(settings).Begin();
        foreach (var lease in tx.List(settings.Network))
        {
            if (valid.Contains(lease.Owner)) continue;
            tx.Release(settings.Network, lease.Address);
            if (!released.Contains(lease.Owner)) released.Add(lease.Owner);
            Log.Info($"GC released {lease}");
        }
        if (released.Count > 0) tx.Commit();
        return released;
    }

    /// <summary>
    /// 0 when an ADD can be served: every range set has a free address (after reclaiming dead leases).
    /// Code 50 otherwise, with the free count per set, or when the data dir or database is unusable.
    /// </summary>
    public void Status(CniRequest r, NetConf c)
    {
        var settings = IpamSettings.From(c);
        ILeaseTransaction tx;
        try
        {
            tx = _storeFactory(settings).Begin();
        }
        catch (CniException e) when (e.Code is CniErrorCode.IoFailure or CniErrorCode.StoreCorrupt)
        {
            throw new CniException(CniErrorCode.PluginNotAvailable, $"cannot serve ADD: {e.Message}", e.Details, e);
        }

        using (tx)
        {
            var liveness = new LeaseLiveness(_probe);
            var allocator = new RangeAllocator(tx, settings.Network);
            var exhausted = new List<RangeSet>();
            var reclaimed = 0;
            foreach (var set in settings.RangeSets)
            {
                if (allocator.FindFree(set) is not null) continue;
                reclaimed += Reclaim(tx, liveness, settings.Network, set);
                if (allocator.FindFree(set) is null) exhausted.Add(set);
            }
            if (reclaimed > 0) tx.Commit();
            if (exhausted.Count == 0) return;

            var free = settings.RangeSets.Select(s =>
            {
                var held = (UInt128)s.Ranges.Sum(rg => (long)tx.List(settings.Network, rg.Start, rg.End).Count);
                return $"range set {s.Index}: {(held >= s.Capacity ? 0 : s.Capacity - held)} of {s.Capacity} free";
            });
            throw new CniException(CniErrorCode.PluginNotAvailable,
                $"cannot serve ADD: no free address in {string.Join("; ", exhausted)} of network {settings.Network} " +
                $"after reclaiming dead leases ({string.Join(", ", free)})");
        }
    }

    private NetNsId IdentifyNetNs(CniRequest r)
    {
        try
        {
            return _probe.Identify(r.NetNs)
                ?? throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"{CniEnvironment.NetNsVar}={r.NetNs} does not exist");
        }
        catch (IOException e)
        {
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"{CniEnvironment.NetNsVar}={r.NetNs} cannot be used: {e.Message}");
        }
    }

    private static void Reserve(ILeaseTransaction tx, Lease lease)
    {
        // Under the store's lock FindFree/Get just said the address is free; "taken" here means a broken store.
        if (!tx.TryReserve(lease))
            throw new CniException(CniErrorCode.StoreCorrupt, $"address {lease.Address} is free by the address index but cannot be reserved");
    }

    private static void ReleaseOwner(ILeaseTransaction tx, Lease dead, string why)
    {
        foreach (var l in tx.GetByOwner(dead.Network, dead.ContainerId, dead.IfName))
            tx.Release(l.Network, l.Address);
        Log.Info($"reclaimed the leases of {dead.ContainerId}/{dead.IfName} ({dead}): {why}");
    }

    /// <summary>
    /// Leak reclamation without a daemon, run only when a set is exhausted: release, in one batch, every lease in
    /// the set whose attachment is provably dead (with its leases in other sets). Live leases are never touched.
    /// </summary>
    private static int Reclaim(ILeaseTransaction tx, LeaseLiveness liveness, string network, RangeSet set)
    {
        var dead = new Dictionary<(string, string), (Lease Lease, string Why)>();
        foreach (var range in set.Ranges)
            foreach (var lease in tx.List(network, range.Start, range.End))
                if (!dead.ContainsKey(lease.Owner) && liveness.WhyDead(lease) is { } why)
                    dead[lease.Owner] = (lease, why);
        foreach (var (lease, why) in dead.Values) ReleaseOwner(tx, lease, why);
        return dead.Count;
    }

    /// <summary>The ADD result for an attachment's leases (one per range set), or null when they are not a whole ADD's.</summary>
    private static CniResult? ResultOf(IpamSettings settings, IReadOnlyList<Lease> leases)
    {
        if (leases.Count != settings.RangeSets.Count) return null;
        var result = new CniResult { Routes = [.. settings.Routes], Dns = settings.Dns };
        foreach (var set in settings.RangeSets)
        {
            var lease = leases.FirstOrDefault(l => l.RangeSet == set.Index);
            if (lease is null || set.RangeFor(lease.Address) is not { } range) return null;
            result.Ips.Add(new CniIpConfig
            {
                Address = new IpCidr(lease.Address.ToIPAddress(), range.Prefix),
                Gateway = range.Gateway.ToIPAddress(),
            });
        }
        return result;
    }

    private static CniException CheckFailed(string msg) => new(CniErrorCode.CheckFailed, $"CHECK: {msg}");
}
