using System.Net;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// ipMasq: source NAT for pod traffic leaving its subnet, through one of two backends chosen by ipMasqBackend —
/// <see cref="MasqueradeNft"/> (nftables, nf_tables netlink messages, no exec) or <see cref="MasqueradeIptables"/> (the nat table through
/// <c>iptables-restore</c>/<c>ip6tables-restore</c>, a chain per attachment like the reference). Every command the
/// plugin runs for netfilter goes through <see cref="Netfilter"/> (iptables here, <c>nft</c> for <see cref="MacSpoofCheck"/>).
/// <para>
/// Whatever ADD installs names its attachment in the kernel object itself (the nft element's comment, the iptables
/// chain name and rule comments), so DEL without netns and prevResult, and GC, find and remove it with no address at
/// hand and whatever IPAM is used (the reference leaks them then: containernetworking/plugins#810).
/// </para>
/// </summary>
internal static class Masquerade
{
    public enum Backend { Nftables, Iptables }

    /// <summary>One attachment as the masquerade objects name it.</summary>
    public sealed record Attachment(string Network, string ContainerId, string IfName)
    {
        /// <summary>
        /// The nft element comment: "CONTAINERID/IFNAME" (what GC compares with cni.dev/valid-attachments), or a hash
        /// of it when it would not fit nft's 128-byte comment or needs quoting (an ifname may hold any non-space byte).
        /// </summary>
        public string Tag => TagOf(ContainerId, IfName);

        public static string TagOf(string containerId, string ifName)
        {
            var text = $"{containerId}/{ifName}";
            return text.Length <= 100 && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-' or '/' or '@' or '+')
                ? text : $"attachment-{ChildProcess.Fnv1a64(text):x16}";
        }
    }

    /// <summary>
    /// ipMasqBackend: "nftables" or "iptables"; absent means auto — iptables when this node already uses legacy
    /// iptables (x_tables tables loaded in its netns: mixing in nftables NAT next to them is what breaks), else nftables.
    /// </summary>
    public static Backend Resolve(string? configured) => configured switch
    {
        "nftables" => Backend.Nftables,
        "iptables" => Backend.Iptables,
        _ => LegacyIptablesInUse() ? Backend.Iptables : Backend.Nftables,
    };

    private static bool LegacyIptablesInUse()
    {
        foreach (var names in new[] { "/proc/net/ip_tables_names", "/proc/net/ip6_tables_names" })
        {
            try { if (File.ReadAllText(names).Trim().Length > 0) return true; }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return false;
    }

    public static void Add(Backend backend, Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        if (backend == Backend.Iptables) MasqueradeIptables.Add(who, pod);
        else MasqueradeNft.Add(who, pod);
    }

    /// <summary>DEL / rollback. An empty <paramref name="pod"/> (no address known) still removes what carries the tag.</summary>
    public static void Remove(Backend backend, Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        if (backend == Backend.Iptables) MasqueradeIptables.Remove(who, pod);
        else MasqueradeNft.Remove(who, pod);
    }

    public static void Verify(Backend backend, Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        if (backend == Backend.Iptables) MasqueradeIptables.Verify(who, pod);
        else MasqueradeNft.Verify(who, pod);
    }

    public static HashSet<string> ValidTags(IReadOnlyList<GcAttachment> valid) =>
        valid.Where(a => a.ContainerId is not null && a.IfName is not null)
             .Select(a => Attachment.TagOf(a.ContainerId!, a.IfName!)).ToHashSet(StringComparer.Ordinal);

    /// <summary>GC, in both backends (ipMasqBackend may have changed since ADD): removes what belongs to no valid attachment.</summary>
    public static void Gc(string network, IReadOnlyList<GcAttachment> valid)
    {
        var tags = ValidTags(valid);
        MasqueradeNft.Gc(network, tags.Contains);
        MasqueradeIptables.Gc(network, tags.Contains);
    }
}
