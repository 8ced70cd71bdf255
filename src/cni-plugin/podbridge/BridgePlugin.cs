using System.Net;
using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

/// <summary>
/// The bridge plugin: one veth per pod attachment, host end on a Linux bridge, pod end named CNI_IFNAME in
/// the pod's netns, addresses from the IPAM. Verbs live in BridgePlugin.Add/Del/Check.cs.
/// </summary>
public sealed partial class BridgePlugin : ICniPlugin
{
    /// <summary>Opens CNI_NETNS; ADD and CHECK need it to exist and to be another namespace than ours.</summary>
    private static NetNsHandle OpenPodNetNs(CniRequest request)
    {
        NetNsHandle ns;
        try
        {
            ns = NetNsHandle.Open(request.NetNs);
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT)
        {
            throw new CniException(CniErrorCode.InvalidNetNs,
                $"{CniEnvironment.NetNsVar}={request.NetNs} does not exist");
        }
        catch (NetlinkException e)
        {
            throw new CniException(CniErrorCode.InvalidNetNs,
                $"{CniEnvironment.NetNsVar}={request.NetNs} cannot be used: {e.Message}");
        }

        using var own = NetNsHandle.OpenCurrent();
        if (ns.IsSameAs(own))
        {
            ns.Dispose();
            throw new CniException(CniErrorCode.InvalidNetNs,
                $"{CniEnvironment.NetNsVar}={request.NetNs} is the plugin's own network namespace, not a pod's");
        }
        return ns;
    }

    /// <summary>Opens CNI_NETNS for DEL/GC: null when it is unset, gone, or no longer a netns (all mean "nothing to clean in it").</summary>
    private static NetNsHandle? TryOpenPodNetNs(string path)
    {
        if (path.Length == 0) return null;
        try { return NetNsHandle.Open(path); }
        catch (NetlinkException e)
        {
            Log.Info($"netns {path} is gone ({e.Message}); nothing to remove inside it");
            return null;
        }
    }

    private static CniException Kernel(string what, NetlinkException e) =>
        new(CniErrorCode.NetlinkFailure, $"{what}: {e.Message}");

    /// <summary>Host-namespace sysctls a gateway bridge needs; a missing file is logged, not fatal.</summary>
    private static void EnsureHostSysctls(bool v4Gateway, bool v6Gateway)
    {
        using var _ = Log.Time("sysctl.host");
        if (v4Gateway) Ensure("/proc/sys/net/ipv4/ip_forward", "1");
        if (v6Gateway) Ensure("/proc/sys/net/ipv6/conf/all/forwarding", "1");
        // kube-proxy's iptables/nftables rules only see bridged pod-to-pod traffic with these on
        // (Kubernetes network plugin requirements); they exist only while br_netfilter is loaded.
        Ensure("/proc/sys/net/bridge/bridge-nf-call-iptables", "1");
        Ensure("/proc/sys/net/bridge/bridge-nf-call-ip6tables", "1");

        static void Ensure(string path, string value)
        {
            try
            {
                if (!Sysctl.EnsureValue(path, value))
                    Log.Warn($"{path} does not exist (is br_netfilter loaded? 'modprobe br_netfilter'); not set");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CniException(CniErrorCode.IoFailure, $"cannot set {path}={value}: {e.Message}");
            }
        }
    }

    /// <summary>ipMasq's view of pod addresses: each with its subnet (host bits cleared), IPv6 link-local left out.</summary>
    private static List<(IpCidr Subnet, IPAddress Address)> MasqueradeTargets(IEnumerable<IpCidr> addresses) =>
        addresses.Where(a => !a.Address.IsIPv6LinkLocal)
                 .Select(a => (new IpCidr(Network(a), a.PrefixLength), a.Address))
                 .Distinct()
                 .ToList();

    /// <summary>The network address of a CIDR (host bits cleared).</summary>
    private static IPAddress Network(IpCidr cidr)
    {
        var bytes = cidr.Address.GetAddressBytes();
        for (var bit = cidr.PrefixLength; bit < bytes.Length * 8; bit++)
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        return new IPAddress(bytes);
    }

    private static bool SameSubnet(IPAddress a, IPAddress b, int prefix) =>
        a.AddressFamily == b.AddressFamily && Network(new IpCidr(a, prefix)).Equals(Network(new IpCidr(b, prefix)));
}
