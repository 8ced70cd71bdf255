using System.Net;
using System.Net.Sockets;
using PodBridge.Cni;
using PodBridge.Netlink;
using PodBridge.Netlink.Nftables;

namespace PodBridge.Plugin;

/// <summary>
/// ipMasq: source NAT (masquerade) for pod traffic leaving its subnet, in nftables, through nf_tables netlink
/// messages (<see cref="NfTablesSocket"/>; no <c>nft</c> binary needed).
/// <para>
/// Layout, all in one table <c>inet podbridge</c> that podbridge alone writes. Per (network, subnet) one set and one
/// base chain of the same name, <c>masq_NETWORK_SUBNET</c>: the set holds the pod addresses of that network in that
/// subnet, the chain (nat, postrouting, srcnat) holds exactly one rule
/// <c>ip saddr @SET ip daddr != SUBNET ip daddr != 224.0.0.0/4 masquerade</c> (ff00::/8 for IPv6), like the
/// reference's per-pod iptables chain. Keying by network keeps two networks with overlapping subnets apart.
/// </para>
/// <para>
/// Concurrency and cost. ADD first commits only the element adds: one transaction that succeeds exactly when the
/// sets exist, and a set never exists without its chain and rule, because both are only ever created together in
/// one transaction (atomic in the kernel, serialized per netns by its commit mutex). When a set is missing (ENOENT:
/// first pod of that subnet on this node, or after a ruleset flush), ADD commits the setup batch instead: add
/// table/set/chain (no-ops when present), flush the chain and add its one rule, add the elements. Two concurrent
/// setups both end with the chain holding that single rule, so rules never duplicate.
/// DEL deletes elements; an element or set already gone (ENOENT) is success (DESTROYSETELEM needs kernel 6.3+). A
/// transaction that deletes something returns only after an RCU grace period, as it did with <c>nft</c> (DEL +~12 ms).
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
    public const string TableName = "podbridge";

    /// <summary>srcnat, as nft names it.</summary>
    private const int SrcNatPriority = 100;

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
    /// chains and rules on first use. One transaction when the sets exist, two otherwise.
    /// </summary>
    public static void Add(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("nft.add");
        var network = who.Network;
        using var nft = Open();

        var elements = new NftBatch(NftFamily.Inet);
        foreach (var group in pod.GroupBy(p => p.Subnet))
            elements.AddElements(TableName, SetName(network, group.Key), group.Select(p => (p.Address, (string?)who.Tag)));
        try
        {
            nft.Commit(elements);
            return;
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT) { }
        catch (NetlinkException e) { throw Failed("add masquerade elements", e); }

        var setup = new NftBatch(NftFamily.Inet).AddTable(TableName);
        foreach (var group in pod.GroupBy(p => p.Subnet))
        {
            var subnet = group.Key;
            var name = SetName(network, subnet);
            var family = subnet.IsV6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork;
            var multicast = IPNetwork.Parse(subnet.IsV6 ? "ff00::/8" : "224.0.0.0/4");
            // nft caps comments at 128 bytes with the NUL; the set/chain name already identifies the rule uniquely.
            var comment = $"podbridge {network} {subnet}";
            if (comment.Length > 127) comment = $"podbridge {network[..Math.Min(network.Length, 60)]}~ {subnet}";
            var id = setup.AddSet(TableName, name, family);
            setup.AddChain(TableName, name, new NftHook("nat", NftHookNum.PostRouting, SrcNatPriority))
                 .FlushChain(TableName, name)
                 .AddRule(TableName, name, comment,
                     [.. NftMatch.Family(family), .. NftMatch.AddressInSet(family, source: true, name, setId: id),
                      .. NftMatch.Address(source: false, new IPNetwork(subnet.Address, subnet.PrefixLength), negate: true),
                      .. NftMatch.Address(source: false, multicast, negate: true), new NftMasquerade()])
                 .AddElements(TableName, name, group.Select(p => (p.Address, (string?)who.Tag)), id);
        }
        try { nft.Commit(setup); }
        catch (NetlinkException e) { throw Failed($"set up masquerading in table {Table}", e); }
        Log.Info($"ipMasq: set up masquerading for {string.Join(", ", pod.Select(p => p.Subnet).Distinct())} of network {network}");
    }

    /// <summary>
    /// Removes the pod addresses from the network's sets. Already gone (element, set or table) is success, since DEL
    /// must not wedge pod teardown.
    /// </summary>
    public static void Remove(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("nft.del");
        using var nft = Open();
        if (pod.Count == 0)
        {
            // No address known (no prevResult, netns gone): the elements are found by their attachment tag.
            RemoveTagged(nft, who.Network, tag => tag == who.Tag);
            return;
        }
        Delete(nft, [.. pod.Select(p => (SetName(who.Network, p.Subnet), p.Address))]);
    }

    /// <summary>
    /// One transaction deleting the elements; when it fails with ENOENT (one already gone: a transaction aborts as a
    /// whole), element by element, so one gone element does not keep the others.
    /// </summary>
    private static void Delete(NfTablesSocket nft, IReadOnlyList<(string Set, IPAddress Address)> elements)
    {
        if (elements.Count == 0) return;
        var batch = new NftBatch(NftFamily.Inet);
        foreach (var (set, address) in elements) batch.DeleteElements(TableName, set, [address]);
        try
        {
            nft.Commit(batch);
            return;
        }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT && elements.Count > 1) { }
        catch (NetlinkException e) when (e.Errno == Errno.ENOENT) { return; }
        catch (NetlinkException e) { throw Failed("remove masquerade elements", e); }
        foreach (var (set, address) in elements)
        {
            try { nft.Commit(new NftBatch(NftFamily.Inet).DeleteElements(TableName, set, [address])); }
            catch (NetlinkException e) when (e.Errno == Errno.ENOENT) { }
            catch (NetlinkException e) { throw Failed($"remove {address} from set {Table} {set}", e); }
        }
    }

    /// <summary>CHECK: every pod address is in its set, and that set's chain still has its masquerade rule.</summary>
    public static void Verify(Masquerade.Attachment who, IReadOnlyList<(IpCidr Subnet, IPAddress Address)> pod)
    {
        using var _ = Log.Time("nft.check");
        var network = who.Network;
        using var nft = Open();
        IReadOnlyList<NftRuleInfo> rules;
        try { rules = nft.ListRules(NftFamily.Inet, TableName); }
        catch (NetlinkException e) { throw Mismatch($"nftables table {Table} cannot be listed ({e.Message})"); }
        var masqueradingChains = rules.Where(r => r.Expressions.Contains("masq")).Select(r => r.Chain).ToHashSet(StringComparer.Ordinal);

        foreach (var group in pod.GroupBy(p => p.Subnet))
        {
            var name = SetName(network, group.Key);
            IReadOnlyList<IPAddress>? elems;
            try { elems = nft.ListSetElements(NftFamily.Inet, TableName, name); }
            catch (NetlinkException e) { throw Mismatch($"nftables set {Table} {name} cannot be listed ({e.Message})"); }
            if (elems is null) throw Mismatch($"nftables set {Table} {name} does not exist");
            foreach (var (_, address) in group)
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
        using var nft = Open();
        RemoveTagged(nft, network, tag => !keep(tag));
    }

    /// <summary>Every set of table inet podbridge with its elements and their comments; empty when there is no table.</summary>
    public static Dictionary<string, List<NftSetElement>> ReadSets(NfTablesSocket nft)
    {
        var sets = new Dictionary<string, List<NftSetElement>>(StringComparer.Ordinal);
        foreach (var name in nft.ListSets(NftFamily.Inet, TableName))
            if (nft.ListSetElementsWithComments(NftFamily.Inet, TableName, name) is { } elements) sets[name] = [.. elements];
        return sets;
    }

    /// <summary>One listing of this network's sets, then one transaction deleting the matching elements.</summary>
    private static void RemoveTagged(NfTablesSocket nft, string network, Func<string, bool> remove)
    {
        var prefix = SetPrefix(network);
        var doomed = new List<(string Set, IPAddress Address)>();
        try
        {
            foreach (var (name, elements) in ReadSets(nft))
            {
                // Exactly this network's sets: "masq_a_" also starts the sets of a network called "a_b".
                if (!name.StartsWith(prefix, StringComparison.Ordinal) || !SubnetSuffix().IsMatch(name.AsSpan(prefix.Length))) continue;
                foreach (var e in elements)
                    if (e.Comment is { } tag && remove(tag)) doomed.Add((name, e.Address));
            }
        }
        catch (NetlinkException e) { throw Failed($"list table {Table}", e); }
        if (doomed.Count == 0) return;
        Delete(nft, doomed);
        Log.Info($"ipMasq: removed tagged masquerade elements of network {network}: {string.Join("; ", doomed.Select(d => $"{d.Set} {d.Address}"))}");
    }

    /// <summary>A socket in this process's netns (the node's: the plugin never enters the pod's netns on this thread).</summary>
    private static NfTablesSocket Open()
    {
        try { return NfTablesSocket.Open(); }
        catch (NetlinkException e) { throw Failed("open a NETLINK_NETFILTER socket", e); }
    }

    private static CniException Failed(string what, NetlinkException e) =>
        new(CniErrorCode.NetlinkFailure, $"ipMasq: nf_tables could not {what}: {e.Message}");
}
