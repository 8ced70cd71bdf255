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
        var h = Cni.ChildProcess.Fnv1a64($"{containerId}/{ifName}");
        return $"veth{(uint)(h ^ (h >> 32)):x8}";
    }
}
