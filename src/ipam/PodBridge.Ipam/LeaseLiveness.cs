namespace PodBridge.Ipam;

/// <summary>What the host says about leases: the current boot and the identity of a netns path. Injectable for tests.</summary>
public interface IHostProbe
{
    /// <summary>/proc/sys/kernel/random/boot_id, or "" when unknown (then boots are never compared).</summary>
    string BootId { get; }

    /// <summary>(st_dev, st_ino) of the path; null when it does not exist. Throws when it cannot be determined.</summary>
    NetNsId? Identify(string path);
}

public sealed class LinuxHostProbe : IHostProbe
{
    public static readonly LinuxHostProbe Instance = new();

    // Read once per process: it cannot change while we run.
    private static readonly Lazy<string> Boot = new(() =>
    {
        try { return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    });

    public string BootId => Boot.Value;

    public NetNsId? Identify(string path) => Native.Identify(path);
}

/// <summary>
/// Decides whether a lease is provably dead: created in another boot, or its netns path is gone or now names a
/// different namespace. Anything uncertain (no recorded netns, stat failing with EACCES, unknown boot id)
/// counts as live: reclaiming a live pod's address would hand it out twice.
/// </summary>
public sealed class LeaseLiveness(IHostProbe probe)
{
    private readonly Dictionary<string, NetNsId?> _seen = new(StringComparer.Ordinal);

    public IHostProbe Probe => probe;

    /// <summary>Null when the lease may be alive, else why it is dead.</summary>
    public string? WhyDead(Lease lease)
    {
        if (lease.BootId.Length > 0 && probe.BootId.Length > 0 && lease.BootId != probe.BootId)
            return $"created in an earlier boot ({lease.BootId})";
        if (lease.NetNsPath.Length == 0) return null;
        NetNsId? now;
        if (!_seen.TryGetValue(lease.NetNsPath, out now))
        {
            try { now = probe.Identify(lease.NetNsPath); }
            catch (IOException) { return null; }
            _seen[lease.NetNsPath] = now;
        }
        if (now is null) return $"its netns {lease.NetNsPath} no longer exists";
        if (now.Value != lease.NetNs) return $"its netns {lease.NetNsPath} is now a different namespace";
        return null;
    }
}
