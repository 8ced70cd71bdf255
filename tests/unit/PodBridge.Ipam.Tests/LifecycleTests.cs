using System.Text;
using PodBridge.Cni;

namespace PodBridge.Ipam.Tests;

/// <summary>Duplicate ADD, leak reclamation, DEL, CHECK, GC and STATUS on the in-memory store.</summary>
public class LifecycleTests
{
    private static readonly NetConf Small = H.Ranges("""[[{"subnet":"10.1.0.0/29"}]]"""); // .2-.6
    private static readonly NetConf Dual = H.Ranges("""[[{"subnet":"10.1.0.0/29"}],[{"subnet":"fd00::/64"}]]""");

    private static void Fill(PodBridgeIpam ipam, NetConf conf, int n, string prefix = "c")
    {
        for (var i = 0; i < n; i++) ipam.Add(H.Req($"{prefix}{i}"), conf);
    }

    // ---- duplicate ADD

    [Fact]
    public void Second_add_with_a_live_lease_is_104_and_changes_nothing()
    {
        var (ipam, store, _) = H.InMemory();
        ipam.Add(H.Req("c1"), Dual);
        var before = store.Snapshot();
        var commits = store.Commits;
        var e = H.Throws(CniErrorCode.DuplicateAllocation, () => ipam.Add(H.Req("c1"), Dual));
        Assert.Contains("c1/eth0 already holds 10.1.0.2, fd00::2", e.Message);
        Assert.Equal(before, store.Snapshot());
        Assert.Equal(commits, store.Commits);
    }

    [Fact]
    public void Same_container_on_another_interface_is_not_a_duplicate()
    {
        var (ipam, _, _) = H.InMemory();
        ipam.Add(H.Req("c1", "eth0"), Small);
        Assert.Equal("10.1.0.3", ipam.Add(H.Req("c1", "net1"), Small).Addr());
    }

    [Theory]
    [InlineData("boot")]
    [InlineData("gone")]
    [InlineData("replaced")]
    public void Second_add_after_the_first_attachment_died_replaces_its_leases(string how)
    {
        var (ipam, store, probe) = H.InMemory();
        ipam.Add(H.Req("c1"), Dual);
        Kill(probe, "/run/netns/c1", how);
        // a runtime retrying a sandbox gives it a new netns, at the same path or another one
        var r = ipam.Add(H.Req("c1", netns: how == "gone" ? "/run/netns/c1-retry" : null), Dual);
        Assert.Equal(["10.1.0.3", "fd00::3"], r.Ips.Select(i => i.Address.Address.ToString()));
        Assert.Equal(2, store.Snapshot().Count);
    }

    private static void Kill(FakeProbe probe, string netns, string how)
    {
        switch (how)
        {
            case "boot": probe.BootId = "boot-B"; break;
            case "gone": probe.Gone.Add(netns); break;
            case "replaced": probe.Replaced[netns] = new NetNsId(4, 999_999); break;
        }
    }

    [Fact]
    public void Add_needs_an_existing_netns()
    {
        var (ipam, _, probe) = H.InMemory();
        probe.Gone.Add("/run/netns/c1");
        Assert.Contains("CNI_NETNS=/run/netns/c1 does not exist",
            H.Throws(CniErrorCode.InvalidEnvironmentVariables, () => ipam.Add(H.Req("c1"), Small)).Message);
    }

    [Fact]
    public void Lease_records_pod_boot_netns_and_time()
    {
        var (ipam, store, probe) = H.InMemory();
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        ipam.Add(H.Req("c1", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web"), Small);
        var l = Assert.Single(store.Snapshot());
        Assert.Equal((H.Net, "c1", "eth0", 0), (l.Network, l.ContainerId, l.IfName, l.RangeSet));
        Assert.Equal(("ns", "web"), (l.PodNamespace, l.PodName));
        Assert.Equal("boot-A", l.BootId);
        Assert.Equal("/run/netns/c1", l.NetNsPath);
        Assert.Equal(probe.Identify("/run/netns/c1"), l.NetNs);
        Assert.InRange(l.Created, before, DateTimeOffset.UtcNow.AddSeconds(1));
    }

    // ---- reclamation

    [Theory]
    [InlineData("boot")]
    [InlineData("gone")]
    [InlineData("replaced")]
    public void Exhausted_set_reclaims_dead_leases_in_one_batch(string how)
    {
        var (ipam, store, probe) = H.InMemory();
        Fill(ipam, Dual, 5);
        if (how == "boot")
        {
            probe.BootId = "boot-B";
        }
        else
        {
            Kill(probe, "/run/netns/c1", how);
            Kill(probe, "/run/netns/c3", how);
        }
        ipam.Add(H.Req("new"), Dual);
        var owners = store.Snapshot().Select(l => l.ContainerId).Distinct().Order().ToList();
        // both dead attachments went at once, with their leases in the other (v6) set
        Assert.Equal(how == "boot" ? ["new"] : ["c0", "c2", "c4", "new"], owners);
    }

    [Fact]
    public void Live_leases_are_never_reclaimed()
    {
        var (ipam, store, probe) = H.InMemory();
        Fill(ipam, Small, 5);
        probe.Gone.Add("/run/netns/unrelated");
        H.Throws(CniErrorCode.RangeExhausted, () => ipam.Add(H.Req("new"), Small));
        Assert.Equal(5, store.Snapshot().Count);
    }

    [Fact]
    public void Uncertain_liveness_counts_as_live()
    {
        var liveness = new LeaseLiveness(new ThrowingProbe());
        Assert.Null(liveness.WhyDead(new Lease(H.Net, default, 0, "c", "eth0") { BootId = "x", NetNsPath = "/run/netns/x" }));
        Assert.Null(new LeaseLiveness(new FakeProbe()).WhyDead(new Lease(H.Net, default, 0, "c", "eth0") { BootId = "boot-A" }));
        Assert.Null(new LeaseLiveness(new FakeProbe { BootId = "" }).WhyDead(new Lease(H.Net, default, 0, "c", "eth0") { BootId = "old" }));
    }

    private sealed class ThrowingProbe : IHostProbe
    {
        public string BootId => "x";
        public NetNsId? Identify(string path) => throw new IOException("stat: Permission denied");
    }

    [Fact]
    public void Real_probe_tells_a_deleted_file_from_a_recreated_one()
    {
        var path = Path.GetTempFileName();
        var probe = LinuxHostProbe.Instance;
        Assert.Matches("^[0-9a-f-]{36}$", probe.BootId);
        var id = probe.Identify(path)!.Value;
        var lease = new Lease(H.Net, default, 0, "c", "eth0") { BootId = probe.BootId, NetNsPath = path, NetNs = id };
        Assert.Null(new LeaseLiveness(probe).WhyDead(lease));
        // keep the old inode alive so the new file cannot reuse its number
        using (var keep = File.OpenRead(path))
        {
            File.Delete(path);
            Assert.Contains("no longer exists", new LeaseLiveness(probe).WhyDead(lease));
            File.WriteAllText(path, "");
            Assert.Contains("is now a different namespace", new LeaseLiveness(probe).WhyDead(lease));
        }
        File.Delete(path);
    }

    // ---- DEL

    [Fact]
    public void Del_releases_every_family_of_the_attachment_only()
    {
        var (ipam, store, _) = H.InMemory();
        ipam.Add(H.Req("c1"), Dual);
        ipam.Add(H.Req("c2"), Dual);
        ipam.Del(H.Req("c1"), Dual);
        Assert.All(store.Snapshot(), l => Assert.Equal("c2", l.ContainerId));
        Assert.Equal(2, store.Snapshot().Count);
    }

    [Fact]
    public void Del_of_nothing_succeeds_without_a_commit()
    {
        var (ipam, store, _) = H.InMemory();
        ipam.Del(H.Req("never"), Small);
        ipam.Del(H.Req("never"), Small);
        Assert.Equal(0, store.Commits);
    }

    [Fact]
    public void Del_works_when_the_ranges_in_the_config_are_broken()
    {
        var (ipam, store, _) = H.InMemory();
        ipam.Add(H.Req("c1"), Small);
        ipam.Del(H.Req("c1"), H.Ranges("""[[{"subnet":"garbage"}]]"""));
        Assert.Empty(store.Snapshot());
    }

    // ---- CHECK

    private static NetConf WithPrev(NetConf conf, string ips)
    {
        var json = $$$"""{"cniVersion":"1.1.0","name":"net1","type":"podbridge","ipam":{"ranges":[[{"subnet":"10.1.0.0/29"}],[{"subnet":"fd00::/64"}]]},"prevResult":{"cniVersion":"1.1.0","ips":[{{{ips}}}]}}""";
        return NetConf.Parse(Encoding.UTF8.GetBytes(json));
    }

    [Fact]
    public void Check_passes_when_the_lease_matches_prev_result()
    {
        var (ipam, _, _) = H.InMemory();
        ipam.Add(H.Req("c1"), Dual);
        // an address outside our ranges (from another plugin) is not ours to judge
        ipam.Check(H.Req("c1"), WithPrev(Dual, """{"address":"10.1.0.2/29"},{"address":"fd00::2/64"},{"address":"192.168.9.9/24"}"""));
        ipam.Check(H.Req("c1"), Dual);
    }

    [Theory]
    [InlineData("""{"address":"10.1.0.3/29"},{"address":"fd00::2/64"}""", "prevResult has 10.1.0.3, but it is not leased to c1/eth0")]
    [InlineData("""{"address":"10.1.0.2/29"}""", "c1/eth0 holds fd00::2, which prevResult does not list")]
    public void Check_fails_with_106_on_a_mismatch(string ips, string message)
    {
        var (ipam, _, _) = H.InMemory();
        ipam.Add(H.Req("c1"), Dual);
        Assert.Contains(message, H.Throws(CniErrorCode.CheckFailed, () => ipam.Check(H.Req("c1"), WithPrev(Dual, ips))).Message);
    }

    [Fact]
    public void Check_fails_with_106_when_nothing_is_leased()
    {
        var (ipam, _, _) = H.InMemory();
        Assert.Contains("c1/eth0 holds no address in network net1",
            H.Throws(CniErrorCode.CheckFailed, () => ipam.Check(H.Req("c1"), Dual)).Message);
    }

    // ---- GC

    private static NetConf Gc(string attachments, string name = H.Net) => NetConf.Parse(Encoding.UTF8.GetBytes(
        $$"""{"cniVersion":"1.1.0","name":"{{name}}","type":"podbridge","ipam":{"ranges":[[{"subnet":"10.1.0.0/29"}]]}{{attachments}}}"""));

    [Fact]
    public void Gc_releases_what_is_not_listed_and_reports_it()
    {
        var (ipam, store, _) = H.InMemory();
        Fill(ipam, Small, 3);
        ipam.Add(H.Req("c0", "net1"), Small);
        ipam.Add(H.Req("x"), H.Conf("""{"ranges":[[{"subnet":"10.1.0.0/29"}]]}""", name: "other"));
        var released = ipam.GcReleased(H.Req(""),
            Gc(""","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"},{"containerID":"c0","ifname":"net1"}]"""));
        Assert.Equal([("c0", "eth0"), ("c2", "eth0")], released.Order());
        Assert.Equal(["c0/net1", "c1/eth0", "x/eth0"], store.Snapshot().Select(l => $"{l.ContainerId}/{l.IfName}").Order());
    }

    [Theory]
    [InlineData(""","cni.dev/valid-attachments":[]""")]
    [InlineData(""","cni.dev/valid-attachments":null""")]
    [InlineData("")]
    public void Gc_with_an_empty_or_null_list_releases_the_whole_network(string attachments)
    {
        var (ipam, store, _) = H.InMemory();
        Fill(ipam, Small, 3);
        ipam.Add(H.Req("x"), H.Conf("""{"ranges":[[{"subnet":"10.1.0.0/29"}]]}""", name: "other"));
        ipam.Gc(H.Req(""), Gc(attachments));
        Assert.Equal("other", Assert.Single(store.Snapshot()).Network);
    }

    [Fact]
    public void Gc_accepts_the_older_attachments_key()
    {
        var (ipam, store, _) = H.InMemory();
        Fill(ipam, Small, 2);
        ipam.Gc(H.Req(""), Gc(""","cni.dev/attachments":[{"containerID":"c1","ifname":"eth0"}]"""));
        Assert.Equal("c1", Assert.Single(store.Snapshot()).ContainerId);
    }

    // ---- STATUS

    [Fact]
    public void Status_is_silent_while_every_set_has_room()
    {
        var (ipam, _, _) = H.InMemory();
        Fill(ipam, Dual, 4);
        ipam.Status(H.Req(""), Dual);
    }

    [Fact]
    public void Status_is_50_with_free_counts_when_a_set_is_exhausted()
    {
        var (ipam, _, _) = H.InMemory();
        Fill(ipam, Dual, 5);
        var e = H.Throws(CniErrorCode.PluginNotAvailable, () => ipam.Status(H.Req(""), Dual));
        Assert.Contains("no free address in range set 0 (10.1.0.0/29", e.Message);
        Assert.Contains("range set 0: 0 of 5 free", e.Message);
        Assert.Contains($"range set 1: {ulong.MaxValue - 1 - 5} of {ulong.MaxValue - 1} free", e.Message);
    }

    [Fact]
    public void Status_reclaims_dead_leases_before_giving_up()
    {
        var (ipam, store, probe) = H.InMemory();
        Fill(ipam, Small, 5);
        probe.Gone.Add("/run/netns/c2");
        ipam.Status(H.Req(""), Small);
        Assert.Equal(4, store.Snapshot().Count);
    }

    [Fact]
    public void Status_is_50_when_the_data_dir_cannot_be_written()
    {
        var file = Path.GetTempFileName();
        try
        {
            // a data dir below a regular file cannot be created, whoever we run as
            var conf = H.Conf($$"""{"ranges":[[{"subnet":"10.1.0.0/29"}]],"dataDir":"{{file}}/d"}""");
            var e = H.Throws(CniErrorCode.PluginNotAvailable, () => new PodBridgeIpam().Status(H.Req(""), conf));
            Assert.Contains($"{file}/d", e.Message);
        }
        finally { File.Delete(file); }
    }
}
