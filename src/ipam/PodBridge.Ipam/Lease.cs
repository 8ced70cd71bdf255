namespace PodBridge.Ipam;

/// <summary>The kernel identity of a network namespace file: (st_dev, st_ino) as stat(2) reports them.</summary>
public readonly record struct NetNsId(ulong Dev, ulong Ino);

/// <summary>
/// One address held by one attachment (network, containerID, ifname). BootId and the netns path + identity
/// are what make a leaked lease provably dead later: another boot, or a netns that no longer exists.
/// </summary>
public sealed record Lease(
    string Network,
    IpAddr Address,
    int RangeSet,
    string ContainerId,
    string IfName)
{
    public string? PodNamespace { get; init; }
    public string? PodName { get; init; }
    public string BootId { get; init; } = "";
    public string NetNsPath { get; init; } = "";
    public NetNsId NetNs { get; init; }
    public DateTimeOffset Created { get; init; }

    public (string ContainerId, string IfName) Owner => (ContainerId, IfName);

    public override string ToString() => $"{Address} held by {ContainerId}/{IfName}" +
        (PodName is null ? "" : $" (pod {PodNamespace}/{PodName})");
}
