using System.Net;
using System.Text;
using System.Text.Json;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// ipMasq: source NAT (masquerade) for pod traffic leaving its subnet, in nftables, by running <c>nft -f -</c>.
/// <para>
/// Layout, all in one table <c>inet podbridge</c> that podbridge alone writes. Per (network, subnet) one set and one
/// base chain of the same name, <c>masq_NETWORK_SUBNET</c>: the set holds the pod addresses of that network in that
/// subnet, the chain (nat, postrouting, srcnat) holds exactly one rule
/// <c>ip saddr @SET ip daddr != SUBNET ip daddr != 224.0.0.0/4 masquerade</c> (ff00::/8 for IPv6), like the
/// reference's per-pod iptables chain. Keying by network keeps two networks with overlapping subnets apart.
/// </para>
/// <para>
/// Concurrency and cost. ADD first runs only <c>add element</c>: one transaction that succeeds exactly when the set
/// exists, and a set never exists without its chain and rule, because both are only ever created together in one
/// nft transaction (atomic in the kernel, serialized per netns by its commit mutex). When the set is missing
/// (first pod of that subnet on this node, or after a ruleset flush), ADD runs the setup script instead: add
/// table/set/chain (no-ops when present), flush the chain and add its one rule, add the element. Two concurrent
/// setups both end with the chain holding that single rule, so rules never duplicate. The split matters: any
/// transaction that replaces or deletes something makes nft's exit wait for an RCU grace period (~10-16 ms
/// measured here), a plain element add does not (~2.5 ms for the whole exec).
/// DEL deletes elements; an element or set already gone is success (nft 1.0.6 has no <c>destroy</c>). Deleting waits
/// for that grace period (+~14 ms per DEL; starting nft in parallel with the veth deletion measured no faster).
/// Every element carries its attachment as its comment (<see cref="Masquerade.Attachment.Tag"/>): DEL without any
/// address (no prevResult, netns already gone) and GC find the elements of an attachment by that tag. Sets, chains and
/// rules stay for the network's next pods.
/// </para>
/// </summary>
internal static partial class MasqueradeNft
{
    [System.Text.RegularExpressions.GeneratedRegex(@"^(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9a-f]{32})_[0-9]{1,3}$")]
    private static partial System.Text.RegularExpressions.Regex SubnetSuffix();

    public const string Table = "inet podbridge";

    /// <summary>Set and chain name for a network's subnet: readable, and always a valid unquoted nft identifier.</summary>
    public static string SetName(string network, IpCidr subnet)
    {
        var net = subnet.Address.GetAddressBytes();
        var text = subnet.IsV6 ? Convert.ToHexStringLower(net) : subnet.Address.ToString();
        return $"{SetPrefix(network)}{text}_{subnet.PrefixLength}";
    }

    /// <summary>"masq_NETWORK_": every set (and chain) of one network starts with it.</summary>
    private static string SetPrefix(string network)
    {
        // Network names are [A-Za-z0-9_.-] (checked by NetConf.Parse), all legal in an nft identifier after a letter.
        // nft names are limited to 255 bytes; a very long network name keeps its head and a hash of the whole.
        if (network.Length > 160) network = $"{network[..140]}_{ChildProcess.Fnv1a64(network):x16}";
        return $"masq_{network}_";
    }

    /// <summary>
    /// Adds the pod addresses (with their subnets, host bits cleared) to the network's sets, creating the sets,
    /// chains and rules on first use. One nft exec when the sets exist, two otherwise.
    /// </summary>
    public static void Add(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("nft.add");
        var network = who.Network;
        var nft = Netfilter.Require("nft", "nftables");

        var elements = new StringBuilder();
        foreach (var (subnet, address) in pod)
            elements.Append($"add element {Table} {SetName(network, subnet)} {{ {address} comment \"{who.Tag}\" }}\n");
        if (Run(nft, elements.ToString()).ExitCode == 0) return;

        var setup = new StringBuilder($"add table {Table}\n");
        foreach (var subnet in pod.Select(p => p.Subnet).Distinct())
        {
            var name = SetName(network, subnet);
            var (ip, type, multicast) = subnet.IsV6 ? ("ip6", "ipv6_addr", "ff00::/8") : ("ip", "ipv4_addr", "224.0.0.0/4");
            // nft caps comments at 128 bytes; the set/chain name already identifies the rule uniquely.
            var comment = $"podbridge {network} {subnet}";
            if (comment.Length > 128) comment = $"podbridge {network[..Math.Min(network.Length, 60)]}~ {subnet}";
            setup.Append($"add set {Table} {name} {{ type {type}; }}\n")
                 .Append($"add chain {Table} {name} {{ type nat hook postrouting priority srcnat; policy accept; }}\n")
                 .Append($"flush chain {Table} {name}\n")
                 .Append($"add rule {Table} {name} {ip} saddr @{name} {ip} daddr != {subnet} {ip} daddr != {multicast} masquerade comment \"{comment}\"\n");
        }
        setup.Append(elements);
        var r = Run(nft, setup.ToString());
        if (r.ExitCode != 0)
            throw new CniException(CniErrorCode.NetlinkFailure, $"ipMasq: nft could not set up masquerading in table {Table}: {r.Error}");
        Log.Info($"ipMasq: set up masquerading for {string.Join(", ", pod.Select(p => p.Subnet).Distinct())} of network {network}");
    }

    /// <summary>
    /// Removes the pod addresses from the network's sets. Already gone (element, set or table) is success; so is a
    /// missing nft (it cannot have added anything then), since DEL must not wedge pod teardown.
    /// </summary>
    public static void Remove(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("nft.del");
        if (Netfilter.Find("nft") is not { } nft)
        {
            Log.Warn("ipMasq: the nft command was not found; no masquerade elements removed");
            return;
        }
        if (pod.Count == 0)
        {
            // No address known (no prevResult, netns gone): the elements are found by their attachment tag.
            RemoveTagged(nft, who.Network, tag => tag == who.Tag);
            return;
        }
        var network = who.Network;
        var scripts = pod.Select(p => $"delete element {Table} {SetName(network, p.Subnet)} {{ {p.Address} }}\n").ToList();
        if (Run(nft, string.Concat(scripts)).ExitCode == 0) return;

        // One transaction aborts as a whole: retry element by element so one gone element does not keep the others.
        foreach (var script in scripts)
        {
            var r = Run(nft, script);
            if (r.ExitCode != 0 && !r.Error.Contains("No such file or directory", StringComparison.Ordinal))
                throw new CniException(CniErrorCode.NetlinkFailure, $"ipMasq: nft could not remove a masquerade element: {r.Error}");
        }
    }

    /// <summary>CHECK: every pod address is in its set, and that set's chain still has its masquerade rule.</summary>
    public static void Verify(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("nft.check");
        var network = who.Network;
        var nft = Netfilter.Require("nft", "nftables");
        var r = Run(nft, null, "-j", "list", "table", "inet", "podbridge");
        if (r.ExitCode != 0)
            throw Mismatch($"nftables table {Table} cannot be listed ({r.Error})");

        using var doc = JsonDocument.Parse(r.Output);
        var sets = new Dictionary<string, List<IPAddress>>();
        var masqueradingChains = new HashSet<string>();
        foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("set", out var set) && set.GetProperty("name").GetString() is { } setName)
            {
                sets[setName] = Elements(set).Select(e => e.Address).ToList();
            }
            else if (item.TryGetProperty("rule", out var rule) && rule.GetProperty("chain").GetString() is { } chain
                     && rule.TryGetProperty("expr", out var expr)
                     && expr.EnumerateArray().Any(x => x.ValueKind == JsonValueKind.Object && x.TryGetProperty("masquerade", out var _)))
            {
                masqueradingChains.Add(chain);
            }
        }

        foreach (var (subnet, address) in pod)
        {
            var name = SetName(network, subnet);
            if (!sets.TryGetValue(name, out var elems)) throw Mismatch($"nftables set {Table} {name} does not exist");
            if (!elems.Contains(address)) throw Mismatch($"{address} is not in nftables set {Table} {name} (not masqueraded)");
            if (!masqueradingChains.Contains(name)) throw Mismatch($"nftables chain {Table} {name} has no masquerade rule");
        }

        static CniException Mismatch(string what) => new(CniErrorCode.CheckFailed, $"CHECK: ipMasq: {what}");
    }

    /// <summary>
    /// GC: removes every tagged element of this network whose attachment is not in <paramref name="keep"/>.
    /// Untagged elements (written before tags existed) are left alone.
    /// </summary>
    public static void Gc(string network, Func<string, bool> keep)
    {
        using var _ = Log.Time("nft.gc");
        if (Netfilter.Find("nft") is not { } nft) return;
        RemoveTagged(nft, network, tag => !keep(tag));
    }

    /// <summary>One listing of the table, then one transaction deleting the matching elements of this network's sets.</summary>
    private static void RemoveTagged(string nft, string network, Func<string, bool> remove)
    {
        var r = Run(nft, null, "-j", "list", "table", "inet", "podbridge");
        if (r.ExitCode != 0) return; // no table: nothing was ever masqueraded here
        var prefix = SetPrefix(network);
        var script = new StringBuilder();
        using (var doc = JsonDocument.Parse(r.Output))
        {
            foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
            {
                // Exactly this network's sets: "masq_a_" also starts the sets of a network called "a_b".
                if (!item.TryGetProperty("set", out var set) || set.GetProperty("name").GetString() is not { } name
                    || !name.StartsWith(prefix, StringComparison.Ordinal) || !SubnetSuffix().IsMatch(name.AsSpan(prefix.Length))) continue;
                foreach (var (address, tag) in Elements(set))
                    if (tag is not null && remove(tag))
                        script.Append($"delete element {Table} {name} {{ {address} }}\n");
            }
        }
        if (script.Length == 0) return;
        var d = Run(nft, script.ToString());
        if (d.ExitCode != 0 && !d.Error.Contains("No such file or directory", StringComparison.Ordinal))
            throw new CniException(CniErrorCode.NetlinkFailure, $"ipMasq: nft could not remove masquerade elements: {d.Error}");
        Log.Info($"ipMasq: removed tagged masquerade elements of network {network}: {script.ToString().Trim().ReplaceLineEndings("; ")}");
    }

    /// <summary>A set's elements as nft -j prints them: a bare address, or {"elem":{"val":ADDRESS,"comment":TAG}}.</summary>
    private static List<(IPAddress Address, string? Tag)> Elements(JsonElement set)
    {
        var elems = new List<(IPAddress, string?)>();
        if (!set.TryGetProperty("elem", out var list)) return elems;
        foreach (var e in list.EnumerateArray())
        {
            if (e.ValueKind == JsonValueKind.String && IPAddress.TryParse(e.GetString(), out var a)) elems.Add((a, null));
            else if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("elem", out var inner)
                     && inner.TryGetProperty("val", out var val) && val.ValueKind == JsonValueKind.String
                     && IPAddress.TryParse(val.GetString(), out var b))
                elems.Add((b, inner.TryGetProperty("comment", out var c) ? c.GetString() : null));
        }
        return elems;
    }

    private static Netfilter.Result Run(string nft, string? script, params string[] args) =>
        Netfilter.Run(nft, script is null ? args : ["-f", "-", .. args], script);
}
