namespace PodBridge.Ipam;

/// <summary>
/// Persistence of leases, separate from the allocation strategy (host-local's backend.Store, ours transactional).
/// Every invocation does all its reads and writes through one <see cref="ILeaseTransaction"/>: either all of
/// them become durable at <see cref="ILeaseTransaction.Commit"/>, or none (dispose without commit).
/// </summary>
public interface ILeaseStore
{
    /// <summary>Takes the store's exclusive lock and opens it. Code 11 when the lock is not free in time, 105 when unreadable.</summary>
    ILeaseTransaction Begin();
}

/// <summary>Operations inside one transaction. None of them scans all leases unless its summary says so.</summary>
public interface ILeaseTransaction : IDisposable
{
    /// <summary>The lease holding an address, if any (index seek).</summary>
    Lease? Get(string network, IpAddr address);

    /// <summary>All leases of one attachment (owner index seek).</summary>
    IReadOnlyList<Lease> GetByOwner(string network, string containerId, string ifName);

    /// <summary>
    /// Held addresses in [from, to] in ascending order, read lazily from the address index: the allocator stops
    /// at the first gap. Do not write while enumerating.
    /// </summary>
    IEnumerable<IpAddr> Held(string network, IpAddr from, IpAddr to);

    /// <summary>Leases with an address in [from, to] (range walk; used on exhaustion and for STATUS counts).</summary>
    IReadOnlyList<Lease> List(string network, IpAddr from, IpAddr to);

    /// <summary>Every lease of a network, or of every network when null (GC and the leases command; a full walk).</summary>
    IReadOnlyList<Lease> List(string? network);

    /// <summary>Atomically records the lease unless its address is held; false means taken.</summary>
    bool TryReserve(Lease lease);

    /// <summary>Deletes the lease of an address; false when there was none.</summary>
    bool Release(string network, IpAddr address);

    /// <summary>The last address handed out dynamically from a range set (the round-robin position).</summary>
    IpAddr? GetCursor(string network, int rangeSet);

    void SetCursor(string network, int rangeSet, IpAddr address);

    /// <summary>Makes every change of this transaction durable (fsync) before returning.</summary>
    void Commit();
}
