using System.Diagnostics;
using System.Text;
using System.Text.Json;
using LiteDB;
using LiteDB.Engine;
using PodBridge.Cni;

namespace PodBridge.Ipam.Tests;

public sealed class LiteDbLeaseStoreTests : IDisposable
{
    private readonly string _dir = H.TempDir();
    private readonly FakeProbe _probe = new();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private NetConf Conf(string ranges = """[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]]""") =>
        H.Conf($$"""{"type":"podbridge-ipam","dataDir":"{{_dir}}","ranges":{{ranges}}}""");

    private PodBridgeIpam Ipam() => new(s => new LiteDbLeaseStore(s.DataDir), _probe);

    private LiteDbLeaseStore Store(TimeSpan? timeout = null) => new(_dir, timeout);

    private IReadOnlyList<Lease> AllLeases()
    {
        using var tx = Store().Begin();
        return tx.List(network: null);
    }

    [Fact]
    public void Leases_and_cursor_survive_new_store_instances()
    {
        Ipam().Add(H.Req("c1", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web"), Conf());
        Ipam().Add(H.Req("c2"), Conf());
        Ipam().Del(H.Req("c1"), Conf());
        // round-robin position came from the file, not from memory
        Assert.Equal("10.1.0.4", Ipam().Add(H.Req("c3"), Conf()).Addr());

        var leases = AllLeases();
        Assert.Equal(["10.1.0.3", "10.1.0.4", "fd00::3", "fd00::4"], leases.Select(l => l.Address.ToString()));
        var l = leases[0];
        Assert.Equal((H.Net, "c2", "eth0", 0, "boot-A", "/run/netns/c2"), (l.Network, l.ContainerId, l.IfName, l.RangeSet, l.BootId, l.NetNsPath));
        Assert.Equal(_probe.Identify("/run/netns/c2"), l.NetNs);
        Assert.InRange(l.Created, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow);
    }

    [Fact]
    public void Unsigned_netns_identity_round_trips()
    {
        IpAddr.TryParse("10.9.0.1", out var a);
        var lease = new Lease("n", a, 0, "c", "eth0") { NetNs = new NetNsId(ulong.MaxValue, 0x8000_0000_0000_0001), BootId = "b", NetNsPath = "/p" };
        using (var tx = Store().Begin())
        {
            Assert.True(tx.TryReserve(lease));
            Assert.False(tx.TryReserve(lease with { ContainerId = "other" }));
            tx.Commit();
        }
        using (var tx = Store().Begin())
            Assert.Equal(lease.NetNs, tx.Get("n", a)!.NetNs);
    }

    [Fact]
    public void Network_names_and_ids_differing_only_in_case_stay_apart()
    {
        IpAddr.TryParse("10.9.0.1", out var a);
        using var tx = Store().Begin();
        Assert.True(tx.TryReserve(new Lease("net", a, 0, "abc", "eth0")));
        Assert.True(tx.TryReserve(new Lease("NET", a, 0, "ABC", "eth0")));
        Assert.Equal("abc", Assert.Single(tx.GetByOwner("net", "abc", "eth0")).ContainerId);
        Assert.Single(tx.List("net"));
        Assert.Single(tx.List("NET"));
    }

    [Fact]
    public void Every_commit_is_fdatasynced_and_an_uncommitted_transaction_leaves_nothing()
    {
        IpAddr.TryParse("10.9.0.1", out var a);
        IpAddr.TryParse("10.9.0.2", out var b);
        using (var tx = Store().Open())
        {
            tx.TryReserve(new Lease("n", a, 0, "c", "eth0"));
            var opened = tx.Syncs.Log; // creating the schema syncs too
            tx.Commit();
            Assert.Equal(opened + 1, tx.Syncs.Log);
        }
        using (var tx = Store().Begin())
            tx.TryReserve(new Lease("n", b, 0, "d", "eth0")); // disposed without commit
        Assert.Equal(["10.9.0.1"], AllLeases().Select(l => l.Address.ToString()));
    }

    [Fact]
    public void An_open_of_a_current_database_does_no_schema_work()
    {
        using (var tx = Store().Open())
            Assert.Equal(LiteDbLeaseStore.SchemaVersion, tx.Engine.Pragma(Pragmas.USER_VERSION).AsInt32);
        var log = new FileInfo(Store().LogPath).Length;
        var data = new FileInfo(Store().DbPath).Length;
        Assert.True(log + data > 0, "the new database's schema was written");
        using (Store().Open()) { }
        // nothing written: only the header was read
        Assert.Equal((log, data), (new FileInfo(Store().LogPath).Length, new FileInfo(Store().DbPath).Length));
    }

    [Fact]
    public void A_schema_1_database_is_upgraded_in_place_and_keeps_its_leases()
    {
        var store = Store();
        IpAddr.TryParse("10.9.0.7", out var a);
        using (var tx = store.Open())
        {
            Assert.True(tx.TryReserve(new Lease("n", a, 0, "c7", "eth0") { BootId = "b", NetNsPath = "/p" }));
            tx.Commit();
        }
        // What schema 1 left: a "meta" collection with the version, USER_VERSION 0.
        using (var data = new FileStream(store.DbPath, FileMode.Open))
        using (var log = new FileStream(store.LogPath, FileMode.Open))
        using (var engine = new LiteEngine(new EngineSettings { DataStream = data, LogStream = log, Collation = Collation.Binary }))
        {
            engine.Insert("meta", [new BsonDocument { ["_id"] = "schema", ["v"] = 1 }], BsonAutoId.ObjectId);
            engine.Pragma(Pragmas.USER_VERSION, 0);
        }

        using (var tx = store.Open())
        {
            Assert.Equal(LiteDbLeaseStore.SchemaVersion, tx.Engine.Pragma(Pragmas.USER_VERSION).AsInt32);
            Assert.DoesNotContain("meta", tx.Engine.GetCollectionNames());
            Assert.Equal("c7", Assert.Single(tx.GetByOwner("n", "c7", "eth0")).ContainerId);
        }
    }

    [Fact]
    public void A_database_from_a_newer_schema_is_refused_not_rewritten()
    {
        var store = Store();
        using (store.Open()) { }
        using (var data = new FileStream(store.DbPath, FileMode.Open))
        using (var log = new FileStream(store.LogPath, FileMode.Open))
        using (var engine = new LiteEngine(new EngineSettings { DataStream = data, LogStream = log, Collation = Collation.Binary }))
            engine.Pragma(Pragmas.USER_VERSION, LiteDbLeaseStore.SchemaVersion + 1);
        var e = Assert.Throws<CniException>(() => store.Open().Dispose());
        Assert.Contains("newer podbridge", e.Message);
    }

    [Fact]
    public void The_log_is_checkpointed_into_the_data_file_and_stays_short()
    {
        var ipam = Ipam();
        var logPath = Store().LogPath;
        var maxLog = 0L;
        for (var i = 0; i < 60; i++)
        {
            ipam.Add(H.Req($"c{i}"), Conf());
            if (i % 2 == 0) ipam.Del(H.Req($"c{i}"), Conf());
            maxLog = Math.Max(maxLog, new FileInfo(logPath).Length);
        }
        Assert.True(maxLog <= (LiteDbLeaseStore.CheckpointPages + 16) * 8192L, $"log grew to {maxLog} bytes");
        Assert.True(new FileInfo(Store().DbPath).Length > 8192, "checkpoints wrote pages into the data file");
        Assert.Equal(60, AllLeases().Count); // 30 attachments x 2 families
    }

    [Fact]
    public void Sixteen_threads_with_their_own_store_instances_get_distinct_addresses()
    {
        const int n = 16;
        var results = new string[n];
        var start = new ManualResetEventSlim();
        var threads = Enumerable.Range(0, n).Select(i => new Thread(() =>
        {
            var ipam = new PodBridgeIpam(s => new LiteDbLeaseStore(s.DataDir), _probe);
            start.Wait();
            results[i] = ipam.Add(H.Req($"c{i}"), Conf()).Addr();
        })).ToList();
        threads.ForEach(t => t.Start());
        start.Set();
        threads.ForEach(t => t.Join());

        Assert.Equal(n, results.Distinct().Count());
        Assert.Equal(2 * n, AllLeases().Count);
        Assert.Equal(Enumerable.Range(2, n).Select(i => $"10.1.0.{i}"), results.Order(StringComparer.Ordinal).OrderBy(s => s.Length));
    }

    [Fact]
    public void A_held_lock_times_out_with_code_11()
    {
        Store().Begin().Dispose(); // create the files
        using var held = FileLock.Acquire(Store().LockPath, TimeSpan.FromSeconds(1));
        var sw = Stopwatch.StartNew();
        var e = H.Throws(CniErrorCode.TryAgainLater, () => Store(TimeSpan.FromMilliseconds(300)).Begin());
        Assert.InRange(sw.ElapsedMilliseconds, 300, 5000);
        Assert.Contains(Store().LockPath, e.Message);
    }

    [Fact]
    public void The_lock_is_released_after_each_transaction()
    {
        using (Store().Begin()) { }
        using var again = FileLock.Acquire(Store().LockPath, TimeSpan.FromMilliseconds(100));
    }

    [Fact]
    public void A_corrupt_file_is_105_naming_it_and_the_repair_command_and_is_left_alone()
    {
        Ipam().Add(H.Req("c1"), Conf());
        var db = Store().DbPath;
        var bytes = File.ReadAllBytes(db);
        Encoding.ASCII.GetBytes("this is not LiteDB at all").CopyTo(bytes, 0);
        Encoding.ASCII.GetBytes("garbage garbage garbage garbage").CopyTo(bytes, 32);
        File.WriteAllBytes(db, bytes);

        var e = H.Throws(CniErrorCode.StoreCorrupt, () => Ipam().Add(H.Req("c2"), Conf()));
        Assert.Contains(db, e.Message);
        Assert.Contains($"podbridge-ipam repair --data-dir {_dir}", e.Message);
        H.Throws(CniErrorCode.StoreCorrupt, () => Ipam().Del(H.Req("c1"), Conf()));
        Assert.Equal(bytes, File.ReadAllBytes(db)); // never silently reset
    }

    [Fact]
    public void An_empty_file_is_a_new_database()
    {
        File.WriteAllBytes(Store().DbPath, []);
        Assert.Equal("10.1.0.2", Ipam().Add(H.Req("c1"), Conf()).Addr());
    }

    [Fact]
    public void LiteDb_aborts_the_whole_explicit_transaction_on_a_duplicate_key()
    {
        // Why TryReserve probes before inserting: catching LiteException 110 would not leave the transaction usable.
        using var engine = new LiteEngine(new EngineSettings { DataStream = new MemoryStream(), Collation = Collation.Binary });
        engine.BeginTrans();
        engine.Insert("c", [new BsonDocument { ["_id"] = "a" }], BsonAutoId.ObjectId);
        engine.Insert("c", [new BsonDocument { ["_id"] = "b" }], BsonAutoId.ObjectId);
        var e = Assert.Throws<LiteException>(() => engine.Insert("c", [new BsonDocument { ["_id"] = "a" }], BsonAutoId.ObjectId));
        Assert.Equal(LiteException.INDEX_DUPLICATE_KEY, e.ErrorCode);
        Assert.False(engine.Commit()); // nothing left to commit
        using var reader = engine.Query("c", new Query());
        Assert.False(reader.Read());
    }

    [Fact]
    public void Lifecycle_on_the_file_store()
    {
        var ipam = Ipam();
        var conf = Conf("""[[{"subnet":"10.1.0.0/29"}]]""");
        for (var i = 0; i < 5; i++) ipam.Add(H.Req($"c{i}"), conf);
        H.Throws(CniErrorCode.RangeExhausted, () => ipam.Add(H.Req("x"), conf));
        H.Throws(CniErrorCode.PluginNotAvailable, () => ipam.Status(H.Req(""), conf));
        H.Throws(CniErrorCode.DuplicateAllocation, () => ipam.Add(H.Req("c0"), conf));
        H.Throws(CniErrorCode.AddressUnavailable, () => ipam.Add(H.Req("y", args: "IP=10.1.0.3"), conf));
        ipam.Check(H.Req("c1"), conf);

        _probe.Gone.Add("/run/netns/c3");
        Assert.Equal("10.1.0.5", ipam.Add(H.Req("x"), conf).Addr()); // c3's address, reclaimed
        ipam.Del(H.Req("c0"), conf);
        ipam.Status(H.Req(""), conf);
        var gc = NetConf.Parse(Encoding.UTF8.GetBytes(
            $$"""{"cniVersion":"1.1.0","name":"net1","ipam":{"dataDir":"{{_dir}}"},"cni.dev/valid-attachments":[{"containerID":"x","ifname":"eth0"}]}"""));
        Assert.Equal(["c1", "c2", "c4"], ipam.GcReleased(H.Req(""), gc).Select(o => o.ContainerId).Order());
        Assert.Equal("x", Assert.Single(AllLeases()).ContainerId);
    }

    [Fact]
    public void Leases_command_prints_one_json_object_per_lease()
    {
        Ipam().Add(H.Req("c1", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web"), Conf());
        _probe.Gone.Add("/run/netns/c1");
        using var stdout = new MemoryStream();
        Assert.Equal(0, IpamAdmin.Leases(_dir, stdout, TextWriter.Null));
        var lines = Encoding.UTF8.GetString(stdout.ToArray()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        using var doc = JsonDocument.Parse(lines[0]);
        Assert.Equal("10.1.0.2", doc.RootElement.GetProperty("ip").GetString());
        Assert.Equal("web", doc.RootElement.GetProperty("podName").GetString());
        Assert.Equal("/run/netns/c1", doc.RootElement.GetProperty("netns").GetString());
        // the admin command uses the real host: /run/netns/c1 does not exist here
        Assert.True(doc.RootElement.GetProperty("dead").GetBoolean());
    }

    [Fact]
    public void Repair_rebuilds_and_keeps_every_lease_and_a_backup()
    {
        for (var i = 0; i < 5; i++) Ipam().Add(H.Req($"c{i}"), Conf());
        var output = new StringWriter();
        Assert.Equal(0, IpamAdmin.Repair(_dir, output, output));
        Assert.Contains("repaired", output.ToString());
        Assert.Contains("10 lease(s) readable", output.ToString());
        Assert.NotEmpty(Directory.GetFiles(_dir, "podbridge-ipam.db.*.bak"));
        Assert.Equal(10, AllLeases().Count);
        Assert.Equal("10.1.0.7", Ipam().Add(H.Req("c5"), Conf()).Addr()); // cursor survived too
    }

    [Fact]
    public void Repair_salvages_the_readable_leases_when_a_document_is_damaged()
    {
        var net = H.Conf($$"""{"type":"podbridge-ipam","dataDir":"{{_dir}}","ranges":[[{"subnet":"10.1.0.0/22"}]]}""");
        var ipam = Ipam();
        for (var i = 0; i < 40; i++) ipam.Add(H.Req(i == 17 ? "corruptme" : $"c{i}"), net);
        using (var tx = Store().Open())
        {
            tx.Commit();
            tx.Engine.Checkpoint(); // move everything into the data file, where the damage goes
        }
        var db = Store().DbPath;
        var bytes = File.ReadAllBytes(db);
        // the "cid" element of one lease: type 0x02, "cid\0", int32 length 10, "corruptme\0"
        byte[] pattern = [0x02, (byte)'c', (byte)'i', (byte)'d', 0, 10, 0, 0, 0, .. Encoding.ASCII.GetBytes("corruptme"), 0];
        var at = bytes.AsSpan().IndexOf(pattern);
        Assert.True(at > 0, "lease document not found in the data file");
        bytes[at] = 0x7f; // an element type LiteDB does not know
        File.WriteAllBytes(db, bytes);
        H.Throws(CniErrorCode.StoreCorrupt, () => Ipam().Gc(H.Req(""), net)); // GC reads every lease

        var output = new StringWriter();
        Assert.Equal(0, IpamAdmin.Repair(_dir, output, output));
        Assert.True(output.ToString().Contains("39 lease(s) readable"), output.ToString());
        Assert.Equal(39, AllLeases().Count);
        Assert.DoesNotContain(AllLeases(), l => l.ContainerId == "corruptme");
        Assert.NotEmpty(Directory.GetFiles(_dir, "*.broken"));
        Assert.Equal("10.1.0.42", Ipam().Add(H.Req("after"), net).Addr()); // cursor salvaged too
    }

    [Fact]
    public void Repair_of_an_unrecognisable_file_fails_and_says_how_to_start_over()
    {
        Ipam().Add(H.Req("c1"), Conf());
        var db = Store().DbPath;
        using (var tx = Store().Open()) { tx.Commit(); tx.Engine.Checkpoint(); }
        File.WriteAllBytes(db, Enumerable.Repeat((byte)0x55, 8192 * 3).ToArray());
        var output = new StringWriter();
        Assert.Equal(1, IpamAdmin.Repair(_dir, output, output));
        Assert.Contains("Starting over forgets every lease", output.ToString());
        Assert.NotEmpty(Directory.GetFiles(_dir, "podbridge-ipam.db.*.bak"));
        Assert.Equal(1, IpamAdmin.Leases(_dir, new MemoryStream(), TextWriter.Null));
    }
}
