namespace PodBridge.Plugin;

/// <summary>
/// The host end of a pod's veth is named from (containerID, ifname) so DEL and GC can find it without state:
/// "veth" + 8 hex digits of a 64-bit FNV-1a hash. A collision (≈1e-6 for 100 pods on a node) is caught by
/// CREATE|EXCL and reported, never resolved by deleting the other pod's link.
/// </summary>
public static class HostVeth
{
    public static string Name(string containerId, string ifName)
    {
        const ulong offset = 14695981039346656037UL, prime = 1099511628211UL;
        var h = offset;
        foreach (var c in containerId) { h ^= c; h *= prime; }
        h ^= '/'; h *= prime;
        foreach (var c in ifName) { h ^= c; h *= prime; }
        return $"veth{(uint)(h ^ (h >> 32)):x8}";
    }
}
