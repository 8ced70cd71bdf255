using System.Text;
using System.Text.Json;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// macspoofchk: frames entering the bridge from a pod's host veth must carry the pod's MAC as source, else they are
/// dropped — in nftables, table <c>bridge podbridge</c> (podbridge's own; the reference's <c>bridge nat</c> is never
/// touched), through <c>nft -f -</c> like <see cref="MasqueradeNft"/>.
/// <para>
/// Layout: one base chain <c>spoofchk</c> (filter, bridge prerouting, priority -300 like the reference) with the single
/// rule <c>iifname vmap @spoofchk_ports</c>; per attachment one element <c>"HOSTVETH" : jump spoof_HOSTVETH</c> in that
/// verdict map and one chain <c>spoof_HOSTVETH</c> with <c>ether saddr != POD_MAC drop</c>. Everything is keyed by
/// the host veth name, which is derived from (containerID, ifname): DEL needs neither the netns nor prevResult nor
/// the MAC. Element and rule comments name the network and attachment, for GC.
/// </para>
/// </summary>
internal static class MacSpoofCheck
{
    public const string Table = "bridge podbridge";
    private const string Map = "spoofchk_ports";
    private const string Key = "macspoofchk";

    private static string Chain(string hostVeth) => $"spoof_{hostVeth}";

    private static string Comment(Masquerade.Attachment who) => $"{who.Network} {who.Tag}";

    public static void Add(Masquerade.Attachment who, string hostVeth, string podMac)
    {
        using var _ = Log.Time("nft.spoofchk.add");
        var nft = Netfilter.Require("nft", "nftables", Key);
        var chain = Chain(hostVeth);
        var comment = Comment(who);
        var attachment = new StringBuilder()
            .Append($"add chain {Table} {chain}\n")
            .Append($"flush chain {Table} {chain}\n")
            .Append($"add rule {Table} {chain} ether saddr != {podMac} counter drop comment \"{comment}\"\n")
            .Append($"add element {Table} {Map} {{ \"{hostVeth}\" comment \"{comment}\" : jump {chain} }}\n")
            .ToString();
        // Fast path: the table, map and base chain exist (they are only ever created together, in one transaction).
        if (Run(nft, attachment).ExitCode == 0) return;

        var setup = new StringBuilder($"add table {Table}\n")
            .Append($"add map {Table} {Map} {{ type ifname : verdict; }}\n")
            .Append($"add chain {Table} spoofchk {{ type filter hook prerouting priority -300; policy accept; }}\n")
            .Append($"flush chain {Table} spoofchk\n")
            .Append($"add rule {Table} spoofchk iifname vmap @{Map}\n")
            .Append(attachment);
        var r = Run(nft, setup.ToString());
        if (r.ExitCode != 0)
            throw new CniException(CniErrorCode.NetlinkFailure, $"{Key}: nft could not set up the MAC spoof check for {hostVeth}: {r.Error}");
        Log.Info($"{Key}: frames from {hostVeth} must come from {podMac}");
    }

    /// <summary>DEL / rollback: the map element, then the chain. Already gone is success; a missing nft too.</summary>
    public static void Remove(string hostVeth)
    {
        using var _ = Log.Time("nft.spoofchk.del");
        if (Netfilter.Find("nft") is not { } nft) return;
        var element = $"delete element {Table} {Map} {{ \"{hostVeth}\" }}\n";
        var chain = $"delete chain {Table} {Chain(hostVeth)}\n";
        if (Run(nft, element + chain).ExitCode == 0) return;
        // One transaction aborts as a whole: one step at a time, ignoring what is already gone.
        foreach (var step in new[] { element, chain })
        {
            var r = Run(nft, step);
            if (r.ExitCode != 0 && !r.Error.Contains("No such file or directory", StringComparison.Ordinal))
                throw new CniException(CniErrorCode.NetlinkFailure, $"{Key}: nft could not remove the MAC spoof check of {hostVeth}: {r.Error}");
        }
    }

    /// <summary>CHECK: the port's map element jumps to its chain, and that chain drops every source MAC but the pod's.</summary>
    public static void Verify(string hostVeth, string podMac)
    {
        using var _ = Log.Time("nft.spoofchk.check");
        var nft = Netfilter.Require("nft", "nftables", Key);
        var r = Run(nft, null, "-j", "list", "table", "bridge", "podbridge");
        if (r.ExitCode != 0) throw Mismatch($"nftables table {Table} cannot be listed ({r.Error})");
        var chain = Chain(hostVeth);
        bool jumps = false, drops = false;
        using var doc = JsonDocument.Parse(r.Output);
        foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("map", out var map) && map.GetProperty("name").GetString() == Map && map.TryGetProperty("elem", out var elems))
            {
                foreach (var e in elems.EnumerateArray())
                    if (e.ValueKind == JsonValueKind.Array && e.GetArrayLength() == 2 && KeyOf(e[0]) == hostVeth
                        && e[1].TryGetProperty("jump", out var jump) && jump.GetProperty("target").GetString() == chain)
                        jumps = true;
            }
            else if (item.TryGetProperty("rule", out var rule) && rule.GetProperty("chain").GetString() == chain)
            {
                var text = rule.GetProperty("expr").GetRawText();
                if (text.Contains("\"saddr\"", StringComparison.Ordinal) && text.Contains("\"!=\"", StringComparison.Ordinal)
                    && text.Contains($"\"{podMac}\"", StringComparison.OrdinalIgnoreCase) && text.Contains("\"drop\"", StringComparison.Ordinal))
                    drops = true;
            }
        }
        if (!jumps) throw Mismatch($"{hostVeth} is not in nftables map {Table} {Map}");
        if (!drops) throw Mismatch($"nftables chain {Table} {chain} does not drop source MACs other than {podMac}");

        static CniException Mismatch(string what) => new(CniErrorCode.CheckFailed, $"CHECK: {Key}: {what}");
    }

    /// <summary>GC: removes this network's port checks whose attachment is not in <paramref name="keep"/>.</summary>
    public static void Gc(string network, Func<string, bool> keep)
    {
        using var _ = Log.Time("nft.spoofchk.gc");
        if (Netfilter.Find("nft") is not { } nft) return;
        var r = Run(nft, null, "-j", "list", "map", "bridge", "podbridge", Map);
        if (r.ExitCode != 0) return;
        var stale = new List<string>();
        using (var doc = JsonDocument.Parse(r.Output))
        {
            foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
            {
                if (!item.TryGetProperty("map", out var map) || !map.TryGetProperty("elem", out var elems)) continue;
                foreach (var e in elems.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Array || e.GetArrayLength() != 2 || !e[0].TryGetProperty("elem", out var inner)) continue;
                    var comment = inner.TryGetProperty("comment", out var c) ? c.GetString() : null;
                    if (comment is null || !comment.StartsWith(network + " ", StringComparison.Ordinal)) continue;
                    if (!keep(comment[(network.Length + 1)..]) && KeyOf(e[0]) is { } port) stale.Add(port);
                }
            }
        }
        foreach (var port in stale) Remove(port);
    }

    /// <summary>A map key as nft -j prints it: "vethX", or {"elem":{"val":"vethX","comment":...}}.</summary>
    private static string? KeyOf(JsonElement key) =>
        key.ValueKind == JsonValueKind.String ? key.GetString()
        : key.TryGetProperty("elem", out var inner) && inner.TryGetProperty("val", out var val) ? val.GetString() : null;

    private static Netfilter.Result Run(string nft, string? script, params string[] args) =>
        Netfilter.Run(nft, script is null ? args : ["-f", "-", .. args], script, Key);
}
