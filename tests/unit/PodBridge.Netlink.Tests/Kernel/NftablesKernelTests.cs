using System.Net;
using System.Net.Sockets;
using PodBridge.Netlink.Nftables;

namespace PodBridge.Netlink.Tests.Kernel;

/// <summary>nf_tables batches against the kernel, in a namespace of the test's own; `nft` reads back independently.</summary>
public sealed class NftablesKernelTests : IDisposable
{
    private readonly TestNetns _ns = new();

    private string Nft(params string[] args)
    {
        var (code, stdout, stderr) = Ip.Exec("ip", ["netns", "exec", _ns.Name, "nft", .. args]);
        if (code != 0) throw new InvalidOperationException($"nft {string.Join(' ', args)}: {stderr}");
        return stdout;
    }

    private static NftBatch Masquerade(string table, byte[] userData, params string[] clusterCidrs)
    {
        var batch = new NftBatch(NftFamily.Inet).AddTable(table).DeleteTable(table).AddTable(table, userData)
            .AddChain(table, "postrouting", new NftHook("nat", NftHookNum.PostRouting, 100));
        foreach (var cidr in clusterCidrs.Select(IPNetwork.Parse))
            batch.AddRule(table, "postrouting", [.. NftMatch.Family(cidr.BaseAddress.AddressFamily),
                .. NftMatch.Address(source: false, cidr), new NftVerdict(NftVerdictCode.Return)]);
        batch.AddRule(table, "postrouting", [.. NftMatch.Family(AddressFamily.InterNetwork),
            .. NftMatch.Address(source: true, IPNetwork.Parse("10.244.1.0/25")), new NftCounter(), new NftMasquerade()]);
        return batch;
    }

    [Fact]
    public void A_committed_table_is_what_nft_lists_and_reads_back_with_its_userdata_and_rules()
    {
        using var nft = NfTablesSocket.OpenIn(_ns.Handle);
        Assert.Null(nft.GetTable(NftFamily.Inet, "pbtest"));
        Assert.Empty(nft.ListRules(NftFamily.Inet, "pbtest"));

        nft.Commit(Masquerade("pbtest", "v1"u8.ToArray(), "10.244.0.0/16", "fd00:10:244::/56"));

        var listed = Nft("list", "table", "inet", "pbtest");
        Assert.Contains("type nat hook postrouting priority srcnat; policy accept;", listed);
        Assert.Contains("ip daddr 10.244.0.0/16 return", listed);
        Assert.Contains("ip6 daddr fd00:10:244::/56 return", listed);
        Assert.Contains("ip saddr 10.244.1.0/25 counter packets 0 bytes 0 masquerade", listed);

        var table = nft.GetTable(NftFamily.Inet, "pbtest");
        Assert.NotNull(table);
        Assert.Equal("v1"u8.ToArray(), table.UserData);
        var rules = nft.ListRules(NftFamily.Inet, "pbtest");
        Assert.Equal(3, rules.Count);
        Assert.All(rules, r => Assert.Equal("postrouting", r.Chain));
        Assert.Equal(["meta", "cmp", "payload", "bitwise", "cmp", "counter", "masq"], rules[2].Expressions);
    }

    [Fact]
    public void Replacing_the_table_in_one_batch_leaves_only_the_new_rules()
    {
        using var nft = NfTablesSocket.OpenIn(_ns.Handle);
        nft.Commit(Masquerade("pbtest", "v1"u8.ToArray(), "10.244.0.0/16", "10.245.0.0/16"));
        nft.Commit(Masquerade("pbtest", "v2"u8.ToArray(), "10.246.0.0/16"));
        var listed = Nft("list", "table", "inet", "pbtest");
        Assert.DoesNotContain("10.244.0.0/16", listed);
        Assert.DoesNotContain("10.245.0.0/16", listed);
        Assert.Contains("ip daddr 10.246.0.0/16 return", listed);
        Assert.Equal(2, nft.ListRules(NftFamily.Inet, "pbtest").Count);
        Assert.Equal("v2"u8.ToArray(), nft.GetTable(NftFamily.Inet, "pbtest")!.UserData);
    }

    [Fact]
    public void A_failing_operation_applies_nothing_of_its_batch_and_names_the_operation()
    {
        using var nft = NfTablesSocket.OpenIn(_ns.Handle);
        nft.Commit(Masquerade("pbtest", "v1"u8.ToArray(), "10.244.0.0/16"));
        // Operation 3 refers to a chain that does not exist: the kernel rejects the batch, so the delete of
        // operation 2 must not have happened either.
        var bad = new NftBatch(NftFamily.Inet).AddTable("pbtest").DeleteTable("pbtest")
            .AddRule("pbtest", "nosuchchain", new NftCounter());
        var e = Assert.Throws<NetlinkException>(() => nft.Commit(bad));
        Assert.Equal(Errno.ENOENT, e.Errno);
        Assert.Contains("operation 3 of 3", e.Message);
        Assert.Contains("10.244.0.0/16", Nft("list", "table", "inet", "pbtest"));

        // The socket is clean for the next request.
        Assert.Equal(2, nft.ListRules(NftFamily.Inet, "pbtest").Count);
    }

    [Fact]
    public void Sets_elements_and_lookups_work_as_the_plugins_ipmasq_layout_needs()
    {
        using var nft = NfTablesSocket.OpenIn(_ns.Handle);
        var batch = new NftBatch(NftFamily.Inet).AddTable("pbtest")
            .AddChain("pbtest", "masq", new NftHook("nat", NftHookNum.PostRouting, 100));
        var id = batch.AddSet("pbtest", "pods", AddressFamily.InterNetwork);
        batch.AddElements("pbtest", "pods", [IPAddress.Parse("10.85.0.2"), IPAddress.Parse("10.85.0.3")], id);
        batch.AddRule("pbtest", "masq", [.. NftMatch.Family(AddressFamily.InterNetwork),
            .. NftMatch.AddressInSet(AddressFamily.InterNetwork, source: true, "pods", setId: id),
            .. NftMatch.Address(source: false, IPNetwork.Parse("10.85.0.0/16"), negate: true), new NftMasquerade()]);
        nft.Commit(batch);
        nft.Commit(new NftBatch(NftFamily.Inet).DeleteElements("pbtest", "pods", [IPAddress.Parse("10.85.0.2")]));
        Assert.Single(nft.ListRules(NftFamily.Inet, "pbtest"));
        Assert.Equal([IPAddress.Parse("10.85.0.3")], nft.ListSetElements(NftFamily.Inet, "pbtest", "pods"));
        Assert.Null(nft.ListSetElements(NftFamily.Inet, "pbtest", "nosuchset"));
        nft.Commit(new NftBatch(NftFamily.Inet).FlushChain("pbtest", "masq"));
        Assert.Empty(nft.ListRules(NftFamily.Inet, "pbtest"));
        nft.Commit(new NftBatch(NftFamily.Inet).AddRule("pbtest", "masq", "podbridge: net1 10.85.0.0/16", [.. NftMatch.Family(AddressFamily.InterNetwork),
            .. NftMatch.AddressInSet(AddressFamily.InterNetwork, source: true, "pods"),
            .. NftMatch.Address(source: false, IPNetwork.Parse("10.85.0.0/16"), negate: true), new NftMasquerade()]));

        var listed = Nft("list", "table", "inet", "pbtest");
        Assert.Contains("elements = { 10.85.0.3 }", listed);
        Assert.Contains("ip saddr @pods ip daddr != 10.85.0.0/16 masquerade comment \"podbridge: net1 10.85.0.0/16\"", listed);
    }

    [Fact]
    public void Element_comments_round_trip_through_the_kernel_and_nft_shows_them()
    {
        using var nft = NfTablesSocket.OpenIn(_ns.Handle);
        var batch = new NftBatch(NftFamily.Inet).AddTable("pbtest");
        var id = batch.AddSet("pbtest", "pods6", AddressFamily.InterNetworkV6);
        batch.AddElements("pbtest", "pods6", [(IPAddress.Parse("fd00::2"), (string?)"c1/eth0"), (IPAddress.Parse("fd00::3"), null)], id);
        nft.Commit(batch);
        var elements = nft.ListSetElementsWithComments(NftFamily.Inet, "pbtest", "pods6")!.OrderBy(e => e.Address.ToString()).ToList();
        Assert.Equal([new NftSetElement(IPAddress.Parse("fd00::2"), "c1/eth0"), new NftSetElement(IPAddress.Parse("fd00::3"), null)], elements);
        Assert.Equal(["pods6"], nft.ListSets(NftFamily.Inet, "pbtest"));
        Assert.Empty(nft.ListSets(NftFamily.Inet, "nosuchtable"));
        Assert.Contains("fd00::2 comment \"c1/eth0\"", Nft("list", "table", "inet", "pbtest"));
    }

    public void Dispose() => _ns.Dispose();
}
