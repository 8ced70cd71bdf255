using System.Text.Json;
using LiteDB;
using LiteDB.Engine;
using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// Operator commands of the podbridge-ipam executable (runtimes never pass argv): list the leases, and repair a
/// database that reports code 105. Both take the same flock as the plugin, so they are safe on a live node.
/// </summary>
public static class IpamAdmin
{
    /// <summary>One JSON object per lease and line, with whether it is provably dead (and why).</summary>
    public static int Leases(string dataDir, Stream stdout, TextWriter stderr)
    {
        var store = new LiteDbLeaseStore(dataDir);
        if (!File.Exists(store.DbPath))
        {
            stderr.WriteLine($"no IPAM database at {store.DbPath}");
            return 0;
        }
        IReadOnlyList<Lease> leases;
        try
        {
            using var tx = store.Begin();
            leases = tx.List(network: null);
        }
        catch (CniException e)
        {
            stderr.WriteLine($"podbridge-ipam: {e.Message}");
            return 1;
        }
        var liveness = new LeaseLiveness(LinuxHostProbe.Instance);
        foreach (var l in leases)
        {
            using (var w = new Utf8JsonWriter(stdout)) WriteLease(w, l, liveness.WhyDead(l));
            stdout.WriteByte((byte)'\n');
        }
        return 0;
    }

    /// <summary>
    /// One lease as the JSON object both `podbridge-ipam leases` and `podbridge leases --json` print (the latter adds
    /// the pod's host veth name, which only the bridge plugin knows).
    /// </summary>
    public static void WriteLease(Utf8JsonWriter w, Lease l, string? whyDead, string? hostVeth = null)
    {
        w.WriteStartObject();
        w.WriteString("network", l.Network);
        w.WriteString("ip", l.Address.ToString());
        w.WriteNumber("rangeSet", l.RangeSet);
        w.WriteString("containerID", l.ContainerId);
        w.WriteString("ifname", l.IfName);
        if (l.PodNamespace is not null) w.WriteString("podNamespace", l.PodNamespace);
        if (l.PodName is not null) w.WriteString("podName", l.PodName);
        w.WriteString("bootID", l.BootId);
        w.WriteString("netns", l.NetNsPath);
        w.WriteNumber("netnsDev", l.NetNs.Dev);
        w.WriteNumber("netnsIno", l.NetNs.Ino);
        if (hostVeth is not null) w.WriteString("hostVeth", hostVeth);
        w.WriteString("created", l.Created.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"));
        w.WriteBoolean("dead", whyDead is not null);
        if (whyDead is not null) w.WriteString("deadReason", whyDead);
        w.WriteEndObject();
    }

    /// <summary>
    /// Rebuilds the database with LiteDB's Rebuild (every readable page of the data file and its log into a fresh
    /// file), then reads every lease back one by one. LiteDB gives up on some damage and copies other damage
    /// faithfully; if either happened, the leases that read back valid are written to a fresh file instead and
    /// the damaged files are kept as ".broken". A timestamped copy of the original is made first.
    /// </summary>
    public static int Repair(string dataDir, TextWriter stdout, TextWriter stderr)
    {
        var store = new LiteDbLeaseStore(dataDir);
        if (!File.Exists(store.DbPath))
        {
            stderr.WriteLine($"no IPAM database at {store.DbPath}; nothing to repair");
            return 1;
        }

        var stamp = DateTime.UtcNow.ToString("yyyyMMdd'T'HHmmss'Z'");
        var backup = $"{store.DbPath}.{stamp}.bak";
        try
        {
            using (FileLock.Acquire(store.LockPath, LiteDbLeaseStore.DefaultLockTimeout))
            {
                File.Copy(store.DbPath, backup);
                if (File.Exists(store.LogPath) && new FileInfo(store.LogPath).Length > 0)
                    File.Copy(store.LogPath, $"{store.LogPath}.{stamp}.bak");
                stdout.WriteLine($"backup copy: {backup}");
                var rebuilt = false;
                try
                {
                    RebuildFile(store.DbPath);
                    rebuilt = true;
                    stdout.WriteLine("rebuilt with LiteDB Rebuild");
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    foreach (var temp in Directory.GetFiles(dataDir, Path.GetFileNameWithoutExtension(LiteDbLeaseStore.DbFileName) + "-temp*"))
                        File.Delete(temp);
                    stderr.WriteLine($"LiteDB Rebuild failed ({e.Message}); salvaging the readable leases instead");
                }
                var content = ReadBack(store, stderr);
                if (!rebuilt || content.Damaged) WriteFresh(store, stamp, content, stdout);
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            stderr.WriteLine($"cannot repair {store.DbPath}: {e.Message}");
            stderr.WriteLine($"the backup is {backup}. Starting over forgets every lease (running pods keep their addresses, " +
                             $"which could then be handed out again): drain the node, move {store.DbPath} and {store.LogPath} away, " +
                             "and restart its pods.");
            return 1;
        }

        // Verify through the plugin's own path (takes the lock again).
        try
        {
            using var tx = store.Begin();
            var count = tx.List(network: null).Count;
            stdout.WriteLine($"repaired {store.DbPath}: {count} lease(s) readable");
            return 0;
        }
        catch (CniException e)
        {
            stderr.WriteLine($"repaired, but the database still cannot be read: {e.Message}");
            return 1;
        }
    }

    private sealed record Content(List<BsonDocument> Leases, List<BsonDocument> Cursors, int Lost, bool Damaged);

    /// <summary>
    /// Every lease through the address index, keys first (no document loads), then each document on its own and
    /// validated: one bad page costs only the leases on it.
    /// </summary>
    private static Content ReadBack(LiteDbLeaseStore store, TextWriter stderr)
    {
        var leases = new List<BsonDocument>();
        var cursors = new List<BsonDocument>();
        var lost = 0;
        var damaged = false;
        using var data = new SyncedFile(store.DbPath);
        using var log = new SyncedFile(store.LogPath);
        using var engine = new LiteEngine(new EngineSettings { DataStream = data, LogStream = log, Collation = Collation.Binary });
        var ids = new List<BsonValue>();
        try
        {
            using var keys = engine.Query("leases", new Query { Select = BsonExpression.Create("$._id") });
            while (keys.Read()) ids.Add(keys.Current["_id"]);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            damaged = true;
            stderr.WriteLine($"the address index breaks after {ids.Count} entries ({e.Message}); leases after that are lost");
        }
        foreach (var id in ids)
        {
            try
            {
                using var r = engine.Query("leases", new Query { Where = { BsonExpression.Create("_id = @0", id) } });
                if (!r.Read()) throw new FormatException("listed by the index but not found");
                LiteDbLeaseStore.Tx.ToLease(r.Current.AsDocument);
                leases.Add(r.Current.AsDocument);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                lost++;
                damaged = true;
                stderr.WriteLine($"lease {id} is unreadable and dropped: {e.Message}");
            }
        }
        try
        {
            using var r = engine.Query("cursors", new Query());
            while (r.Read()) cursors.Add(r.Current.AsDocument);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            damaged = true;
            stderr.WriteLine($"round-robin positions are unreadable ({e.Message}); allocation restarts at each range's start");
        }
        return new Content(leases, cursors, lost, damaged);
    }

    /// <summary>A fresh database beside the old one, swapped in by rename once it is complete and durable.</summary>
    private static void WriteFresh(LiteDbLeaseStore store, string stamp, Content content, TextWriter stdout)
    {
        var freshDir = Path.Combine(store.DataDir, $".salvage-{stamp}");
        var fresh = new LiteDbLeaseStore(freshDir);
        using (var tx = fresh.Open())
        {
            foreach (var d in content.Leases) tx.InsertRaw("leases", d);
            foreach (var d in content.Cursors) tx.InsertRaw("cursors", d);
            tx.Commit();
        }
        File.Move(store.DbPath, $"{store.DbPath}.{stamp}.broken");
        if (File.Exists(store.LogPath)) File.Move(store.LogPath, $"{store.LogPath}.{stamp}.broken");
        File.Move(fresh.DbPath, store.DbPath);
        File.Move(fresh.LogPath, store.LogPath);
        Directory.Delete(freshDir, recursive: true);
        Native.FsyncDirectory(store.DataDir);
        stdout.WriteLine($"salvaged {content.Leases.Count} lease(s), dropped {content.Lost} unreadable; damaged files kept as *.{stamp}.broken");
    }

    private static void RebuildFile(string dbPath)
    {
        var settings = new EngineSettings { Filename = dbPath, Collation = Collation.Binary };
        LiteEngine engine;
        try
        {
            engine = new LiteEngine(settings);
        }
        catch (Exception e) when (e is LiteException or IOException or InvalidCastException or FormatException)
        {
            // Not even openable: set the header's "invalid datafile" flag, which makes LiteDB rebuild while opening
            // (its own crash-recovery path), reading whatever pages are still intact.
            using (var f = new FileStream(dbPath, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite))
            {
                f.Position = InvalidDatafileStateOffset;
                f.WriteByte(1);
                f.Flush(flushToDisk: true);
            }
            using var recovered = new LiteEngine(new EngineSettings { Filename = dbPath, Collation = Collation.Binary, AutoRebuild = true });
            return;
        }
        using (engine)
            engine.Rebuild(new RebuildOptions { Collation = Collation.Binary, IncludeErrorReport = true });
    }

    // LiteDB 5 HeaderPage.P_INVALID_DATAFILE_STATE: the byte its own Close(exception) sets to request a rebuild.
    private const int InvalidDatafileStateOffset = 191;
}
