namespace PodBridge.Ipam;

/// <summary>
/// A lease store in memory, for unit tests (host-local's fake_store.go, but transactional): one transaction at
/// a time, and a transaction disposed without commit undoes all its writes.
/// </summary>
public sealed class InMemoryLeaseStore : ILeaseStore
{
    private readonly SortedDictionary<string, Lease> _leases = new(StringComparer.Ordinal);
    private readonly Dictionary<string, IpAddr> _cursors = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public int Commits { get; private set; }

    /// <summary>Leases of every network, for test assertions.</summary>
    public IReadOnlyList<Lease> Snapshot()
    {
        lock (_gate) return [.. _leases.Values];
    }

    public ILeaseTransaction Begin()
    {
        Monitor.Enter(_gate);
        return new Tx(this);
    }

    internal static string Key(string network, IpAddr a) => $"{network}|{(a.IsV6 ? '6' : '4')}|{a.ToHex()}";

    private sealed class Tx(InMemoryLeaseStore store) : ILeaseTransaction
    {
        private readonly List<Action> _undo = [];
        private bool _done;

        public Lease? Get(string network, IpAddr address) =>
            store._leases.GetValueOrDefault(Key(network, address));

        public IReadOnlyList<Lease> GetByOwner(string network, string containerId, string ifName) =>
            [.. store._leases.Values.Where(l => l.Network == network && l.ContainerId == containerId && l.IfName == ifName)];

        public IEnumerable<IpAddr> Held(string network, IpAddr from, IpAddr to)
        {
            var lo = Key(network, from);
            var hi = Key(network, to);
            foreach (var (key, lease) in store._leases)
            {
                if (string.CompareOrdinal(key, lo) < 0) continue;
                if (string.CompareOrdinal(key, hi) > 0) yield break;
                yield return lease.Address;
            }
        }

        public IReadOnlyList<Lease> List(string network, IpAddr from, IpAddr to) =>
            [.. Held(network, from, to).Select(a => store._leases[Key(network, a)])];

        public IReadOnlyList<Lease> List(string? network) =>
            [.. store._leases.Values.Where(l => network is null || l.Network == network)];

        public bool TryReserve(Lease lease)
        {
            var key = Key(lease.Network, lease.Address);
            if (!store._leases.TryAdd(key, lease)) return false;
            _undo.Add(() => store._leases.Remove(key));
            return true;
        }

        public bool Release(string network, IpAddr address)
        {
            var key = Key(network, address);
            if (!store._leases.Remove(key, out var old)) return false;
            _undo.Add(() => store._leases[key] = old);
            return true;
        }

        public IpAddr? GetCursor(string network, int rangeSet) =>
            store._cursors.TryGetValue($"{network}|{rangeSet}", out var a) ? a : null;

        public void SetCursor(string network, int rangeSet, IpAddr address)
        {
            var key = $"{network}|{rangeSet}";
            var had = store._cursors.TryGetValue(key, out var old);
            store._cursors[key] = address;
            _undo.Add(() => { if (had) store._cursors[key] = old; else store._cursors.Remove(key); });
        }

        public void Commit()
        {
            _undo.Clear();
            store.Commits++;
        }

        public void Dispose()
        {
            if (_done) return;
            _done = true;
            for (var i = _undo.Count - 1; i >= 0; i--) _undo[i]();
            Monitor.Exit(store._gate);
        }
    }
}
