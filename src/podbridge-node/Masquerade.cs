using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using PodBridge.Netlink.Nftables;

namespace PodBridge.Node;

/// <summary>
/// Source NAT for pod traffic leaving the cluster, in the agent's own nftables table <c>inet podbridge-node</c>:
/// <code>
/// table inet podbridge-node {            # userdata: hash of the desired rules
///   chain postrouting { type nat hook postrouting priority srcnat; policy accept;
///     ip daddr 10.244.0.0/24 return      # one per pod CIDR of every node: pod-to-pod is never NATed
///     ...
///     ip saddr 10.244.1.0/24 masquerade  # this node's pods, to anywhere else
///   }
/// }
/// </code>
/// The table is replaced as a whole in one nf_tables transaction (add, delete, add with content), so packets see
/// either the old or the new rules. The desired rules' hash is stored in the table's userdata: when the table
/// holds it and the expected number of rules, nothing is sent, so a restart or a resync changes nothing.
/// </summary>
public sealed class Masquerade(Action<string> log)
{
    public const string Table = "podbridge-node";
    public const string Chain = "postrouting";
    private const int SrcNatPriority = 100; // NF_IP_PRI_NAT_SRC: `priority srcnat`

    public bool Reconcile(IReadOnlyList<IPNetwork> ownPodCidrs, IReadOnlyList<IPNetwork> clusterCidrs)
    {
        var rules = Rules(ownPodCidrs, clusterCidrs);
        var digest = Digest(rules);
        using var nft = NfTablesSocket.Open();
        if (nft.GetTable(NftFamily.Inet, Table) is { } existing && existing.UserData.AsSpan().SequenceEqual(digest)
            && nft.ListRules(NftFamily.Inet, Table).Count == rules.Count)
            return false;

        var batch = new NftBatch(NftFamily.Inet)
            .AddTable(Table)
            .DeleteTable(Table)
            .AddTable(Table, digest)
            .AddChain(Table, Chain, new NftHook("nat", NftHookNum.PostRouting, SrcNatPriority));
        foreach (var rule in rules) batch.AddRule(Table, Chain, rule.Expressions);
        nft.Commit(batch);
        log($"masquerade: table inet {Table} set: {string.Join("; ", rules.Select(r => r.Text))}");
        return true;
    }

    public sealed record Rule(string Text, NftExpr[] Expressions);

    public static List<Rule> Rules(IReadOnlyList<IPNetwork> ownPodCidrs, IReadOnlyList<IPNetwork> clusterCidrs)
    {
        var rules = new List<Rule>();
        foreach (var cidr in clusterCidrs)
            rules.Add(new Rule($"{Ip(cidr)} daddr {cidr} return",
                [.. NftMatch.Family(cidr.BaseAddress.AddressFamily), .. NftMatch.Address(source: false, cidr), new NftVerdict(NftVerdictCode.Return)]));
        foreach (var cidr in ownPodCidrs)
            rules.Add(new Rule($"{Ip(cidr)} saddr {cidr} masquerade",
                [.. NftMatch.Family(cidr.BaseAddress.AddressFamily), .. NftMatch.Address(source: true, cidr), new NftCounter(), new NftMasquerade()]));
        return rules;
    }

    private static string Ip(IPNetwork cidr) => cidr.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? "ip" : "ip6";

    /// <summary>"podbridge-node:" + SHA-256 of the rules' text: readable in `nft -j list table`, and names the layout.</summary>
    private static byte[] Digest(List<Rule> rules)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(string.Join("\n", rules.Select(r => r.Text))));
        return Encoding.ASCII.GetBytes("podbridge-node:v1:" + Convert.ToHexStringLower(hash));
    }
}
