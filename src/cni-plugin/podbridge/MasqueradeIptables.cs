using System.Net;
using System.Text;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// ipMasqBackend "iptables": the reference's layout in the nat table, one chain per attachment —
/// <c>PB-HASH</c> holding <c>-d SUBNET -j ACCEPT</c> and <c>! -d MULTICAST -j MASQUERADE</c>, and one
/// <c>POSTROUTING -s POD -j PB-HASH</c> per pod address — through <c>iptables-restore --noflush</c> (Debian's
/// iptables-nft: one atomic transaction per family). Every rule carries the comment
/// <c>podbridge name: "NETWORK" id: "TAG"</c>; the chain name is a hash of (network, tag), so DEL finds it with no
/// address and GC finds the chains of attachments that are gone. Chains of other owners (the reference's CNI-*) are
/// never touched.
/// </summary>
internal static partial class MasqueradeIptables
{
    private const string Wait = "5"; // seconds to wait for the xtables lock (legacy backend only)

    private static (string List, string Restore, string Multicast) Family(bool v6) =>
        v6 ? ("ip6tables", "ip6tables-restore", "ff00::/8") : ("iptables", "iptables-restore", "224.0.0.0/4");

    public static string ChainName(Masquerade.Attachment who) =>
        "PB-" + Convert.ToHexStringLower(Sha512.Hash(Encoding.UTF8.GetBytes($"{who.Network}\n{who.Tag}")))[..24];

    private static string Comment(string network, string tag) => $"podbridge name: \\\"{network}\\\" id: \\\"{tag}\\\"";

    public static void Add(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("iptables.add");
        var chain = ChainName(who);
        var comment = Comment(who.Network, who.Tag);
        foreach (var family in pod.GroupBy(p => p.Subnet.IsV6))
        {
            var (list, restore, multicast) = Family(family.Key);
            var tool = Netfilter.Require(restore, "iptables");
            // Declaring the chain with --noflush creates it, or empties it when a previous ADD left it behind.
            var script = new StringBuilder($"*nat\n:{chain} - [0:0]\n");
            foreach (var subnet in family.Select(p => p.Subnet).Distinct())
                script.Append($"-A {chain} -d {subnet} -m comment --comment \"{comment}\" -j ACCEPT\n");
            script.Append($"-A {chain} ! -d {multicast} -m comment --comment \"{comment}\" -j MASQUERADE\n");
            foreach (var (_, address) in family)
                script.Append($"-A POSTROUTING -s {address}/{(family.Key ? 128 : 32)} -m comment --comment \"{comment}\" -j {chain}\n");
            script.Append("COMMIT\n");
            var r = Netfilter.Run(tool, ["--noflush", "-w", Wait], script.ToString());
            if (r.ExitCode != 0)
                throw new CniException(CniErrorCode.NetlinkFailure, $"ipMasq: {restore} could not set up chain {chain} in the nat table: {r.Error}");
        }
        Log.Info($"ipMasq: iptables chain {chain} masquerades {string.Join(", ", pod.Select(p => p.Address))}");
    }

    /// <summary>DEL: the chain and every POSTROUTING jump to it, in each family whose tool exists. Already gone is success.</summary>
    public static void Remove(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("iptables.del");
        var chain = ChainName(who);
        // With known addresses only their families are looked at; without, both.
        var families = pod.Count > 0 ? pod.Select(p => p.Subnet.IsV6).Distinct().ToArray() : [false, true];
        foreach (var v6 in families)
        {
            var rules = ListNat(v6);
            if (rules is null) continue;
            RemoveChains(v6, rules, [chain]);
        }
    }

    public static void Verify(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("iptables.check");
        var chain = ChainName(who);
        foreach (var family in pod.GroupBy(p => p.Subnet.IsV6))
        {
            var (list, _, _) = Family(family.Key);
            var rules = ListNat(family.Key) ?? throw Mismatch($"the {list} command was not found");
            if (!rules.Contains($"-N {chain}")) throw Mismatch($"{list} nat chain {chain} does not exist");
            if (!rules.Any(l => l.StartsWith($"-A {chain} ", StringComparison.Ordinal) && l.EndsWith("-j MASQUERADE", StringComparison.Ordinal)))
                throw Mismatch($"{list} nat chain {chain} has no MASQUERADE rule");
            foreach (var (_, address) in family)
            {
                var source = $"-A POSTROUTING -s {address}/{(family.Key ? 128 : 32)} ";
                if (!rules.Any(l => l.StartsWith(source, StringComparison.Ordinal) && l.EndsWith($"-j {chain}", StringComparison.Ordinal)))
                    throw Mismatch($"{address} has no POSTROUTING jump to {list} nat chain {chain} (not masqueraded)");
            }
        }

        static CniException Mismatch(string what) => new(CniErrorCode.CheckFailed, $"CHECK: ipMasq: {what}");
    }

    /// <summary>GC: removes this network's chains whose tag names no valid attachment.</summary>
    public static void Gc(string network, Func<string, bool> keep)
    {
        using var _ = Log.Time("iptables.gc");
        foreach (var v6 in new[] { false, true })
        {
            var rules = ListNat(v6);
            if (rules is null) continue;
            var stale = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in rules)
                if (OwnRule(line, network) is { } rule && !keep(rule.Tag)) stale.Add(rule.Chain);
            if (stale.Count > 0) RemoveChains(v6, rules, stale);
        }
    }

    /// <summary>
    /// A rule of this network's chains as `iptables -S` prints it: <c>-A PB-&lt;24 hex&gt; ... --comment "podbridge name:
    /// \"NETWORK\" id: \"TAG\""</c> (the last such comment on the line); its chain and tag, or null for any other line.
    /// Parsed by hand: a Regex built at run time would link .NET's whole regex engine into the plugin.
    /// </summary>
    internal static (string Chain, string Tag)? OwnRule(string line, string network)
    {
        const int HashLength = 24;
        if (!line.StartsWith("-A PB-", StringComparison.Ordinal) || line.Length <= 6 + HashLength || line[6 + HashLength] != ' ')
            return null;
        var chain = line.Substring(3, 3 + HashLength);
        foreach (var c in chain.AsSpan(3))
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return null;
        var marker = $"--comment \"podbridge name: \\\"{network}\\\" id: \\\"";
        var at = line.LastIndexOf(marker, StringComparison.Ordinal);
        if (at < 6 + HashLength) return null;
        var tagStart = at + marker.Length;
        var tagEnd = line.IndexOfAny(['\\', '"'], tagStart);
        if (tagEnd <= tagStart || !line.AsSpan(tagEnd).StartsWith("\\\"\"", StringComparison.Ordinal)) return null;
        return (chain, line[tagStart..tagEnd]);
    }

    /// <summary>`iptables -t nat -S`, one rule per line; null when the tool is missing or the nat table cannot be read.</summary>
    private static List<string>? ListNat(bool v6)
    {
        var (list, _, _) = Family(v6);
        if (Netfilter.Find(list) is not { } tool) return null;
        var r = Netfilter.Run(tool, ["-w", Wait, "-t", "nat", "-S"], null);
        if (r.ExitCode != 0)
        {
            Log.Warn($"ipMasq: {list} -t nat -S failed: {r.Error}");
            return null;
        }
        return r.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
    }

    /// <summary>One transaction: every POSTROUTING jump to the chains, then the chains themselves.</summary>
    private static void RemoveChains(bool v6, List<string> rules, IReadOnlyCollection<string> chains)
    {
        var (_, restore, _) = Family(v6);
        var script = new StringBuilder("*nat\n");
        foreach (var line in rules)
            if (line.StartsWith("-A POSTROUTING ", StringComparison.Ordinal) && chains.Any(c => line.EndsWith($"-j {c}", StringComparison.Ordinal)))
                script.Append("-D ").Append(line.AsSpan(3)).Append('\n');
        var present = chains.Where(c => rules.Contains($"-N {c}")).ToList();
        foreach (var c in present) script.Append($"-F {c}\n");
        foreach (var c in present) script.Append($"-X {c}\n");
        if (script.Length == "*nat\n".Length) return;
        script.Append("COMMIT\n");
        var tool = Netfilter.Require(restore, "iptables");
        var r = Netfilter.Run(tool, ["--noflush", "-w", Wait], script.ToString());
        if (r.ExitCode != 0)
            throw new CniException(CniErrorCode.NetlinkFailure, $"ipMasq: {restore} could not remove chain(s) {string.Join(", ", chains)}: {r.Error}");
        Log.Info($"ipMasq: removed iptables chain(s) {string.Join(", ", present)}");
    }
}
