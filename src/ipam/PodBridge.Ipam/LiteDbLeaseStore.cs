using LiteDB;
using LiteDB.Engine;
using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// Leases in one LiteDB file per data dir (every network in it), used through the engine's BsonDocument API only
/// (BsonMapper is reflection-based and not AOT-safe). One <see cref="Begin"/> = flock, open, one transaction,
/// commit (fsync), close, unlock; the engine is the "direct" in-process one and never shares the file.
///
/// Layout, chosen so no call walks all leases:
///   leases   _id   = "network|4|0a010005" (family + fixed-width hex address: string order = address order, so
///                    "next free after the cursor" is an ordered range walk on the primary index; unique, so
///                    one address is held once)
///            owner = "network|containerID|ifname" (secondary index: DEL, duplicate check)
///   cursors  _id   = "network|rangeSetIndex", ip = last dynamically reserved address
/// The schema version is the header's USER_VERSION pragma: an open checks it without loading a collection or
/// parsing an expression, and only a database below <see cref="SchemaVersion"/> gets schema work (once).
/// Schema 1 kept it in a "meta" collection, which the upgrade drops.
/// The collation is binary (ordinal), so network names and container IDs differing in case stay distinct.
/// </summary>
public sealed class LiteDbLeaseStore : ILeaseStore
{
    public const string DbFileName = "podbridge-ipam.db";
    public const string LockFileName = "podbridge-ipam.lock";
    internal const int SchemaVersion = 2;

    /// <summary>
    /// The log (WAL) is copied into the data file once it exceeds this many 8 KiB pages. Every open replays the
    /// whole log into the WAL index, so a long log costs each invocation; a checkpoint costs a second fsync.
    /// </summary>
    public const int CheckpointPages = 64;

    public static readonly TimeSpan DefaultLockTimeout = TimeSpan.FromSeconds(10);

    private readonly TimeSpan _lockTimeout;

    /// <summary>Warm mode (the server): the engine and files stay open between transactions.</summary>
    private readonly bool _keepOpen;
    private Opened? _open;

    /// <summary>The engine and files of an open database (kept between transactions only in warm mode).</summary>
    internal sealed record Opened(SyncedFile Data, SyncedFile Log, LiteEngine Engine)
    {
        /// <summary>Lock-file generation and file stamps after this process's last transaction (warm mode).</summary>
        public long Generation { get; set; }
        public (ulong, long, long, long) DataStamp { get; set; }
        public (ulong, long, long, long) LogStamp { get; set; }

        public void Close()
        {
            try { Engine.Dispose(); }
            catch (Exception e) { PodBridge.Cni.Log.Warn($"closing IPAM database: {e.Message}"); }
            finally
            {
                Data.Dispose();
                Log.Dispose();
            }
        }
    }

    public LiteDbLeaseStore(string dataDir, TimeSpan? lockTimeout = null) : this(dataDir, lockTimeout, keepOpen: false) { }

    /// <summary>
    /// <paramref name="keepOpen"/>: the warm server's store. Every transaction still takes the flock; the engine is
    /// reused only when nobody else had the lock since this process's last transaction (the lock file's generation
    /// is unchanged) and the files are exactly as it left them (inode, size, mtime, ctime), else it is reopened.
    /// </summary>
    internal LiteDbLeaseStore(string dataDir, TimeSpan? lockTimeout, bool keepOpen)
    {
        _keepOpen = keepOpen;
        DataDir = dataDir;
        DbPath = Path.Combine(dataDir, DbFileName);
        LogPath = Path.Combine(dataDir, Path.GetFileNameWithoutExtension(DbFileName) + "-log" + Path.GetExtension(DbFileName));
        LockPath = Path.Combine(dataDir, LockFileName);
        _lockTimeout = lockTimeout ?? DefaultLockTimeout;
    }

    public string DataDir { get; }
    public string DbPath { get; }
    /// <summary>LiteDB's own name for the log of DbPath, so LiteDB's Rebuild (repair) finds it.</summary>
    public string LogPath { get; }
    public string LockPath { get; }

    /// <summary>The recovery command every code-105 message names.</summary>
    public string RepairCommand => $"podbridge-ipam repair --data-dir {DataDir}";

    public ILeaseTransaction Begin() => Open();

    /// <summary>Same as <see cref="Begin"/>, typed, for the admin commands and tests.</summary>
    internal Tx Open()
    {
        FileLock? fileLock = null;
        using (Log.Time("ipam.lock"))
        {
            try
            {
                Directory.CreateDirectory(DataDir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new CniException(CniErrorCode.IoFailure, $"IPAM data dir {DataDir} cannot be created: {e.Message}");
            }
            fileLock = FileLock.Acquire(LockPath, _lockTimeout);
        }

        Opened? opened = null;
        try
        {
            var generation = fileLock.Generation;
            if (!_keepOpen)
            {
                // Tell a warm server that its view of the database may be stale from now on.
                fileLock.Generation = generation + 1;
            }
            else if (_open is { } warm &&
                     (warm.Generation != generation || warm.DataStamp != Native.Stamp(DbPath) || warm.LogStamp != Native.Stamp(LogPath)))
            {
                Log.Debug("IPAM database changed since the last request: reopening it");
                CloseWarm();
            }
            opened = _open ?? OpenEngine();
            if (_keepOpen) _open = opened;
            try
            {
                opened.Engine.BeginTrans();
            }
            catch (Exception e) when (e is not CniException)
            {
                throw Corrupt(e);
            }
            return new Tx(this, fileLock, opened);
        }
        catch
        {
            if (opened is not null && !ReferenceEquals(opened, _open)) opened.Close();
            CloseWarm();
            fileLock.Dispose();
            throw;
        }
    }

    /// <summary>Drops the warm engine (after a failure, on a change by someone else, at server exit).</summary>
    internal void CloseWarm()
    {
        var open = _open;
        _open = null;
        open?.Close();
    }

    /// <summary>Called by the transaction's Dispose with the lock still held.</summary>
    private void Finished(Tx tx, FileLock fileLock, bool failed)
    {
        if (!_keepOpen || failed)
        {
            if (ReferenceEquals(_open, tx.Opened)) _open = null;
            tx.Opened.Close();
            return;
        }
        tx.Opened.Generation = fileLock.Generation;
        tx.Opened.DataStamp = Native.Stamp(DbPath);
        tx.Opened.LogStamp = Native.Stamp(LogPath);
    }

    private Opened OpenEngine()
    {
        SyncedFile? data = null, log = null;
        LiteEngine? engine = null;
        try
        {
            using (Log.Time("ipam.open"))
            {
                CheckNotTruncated();
                try
                {
                    data = new SyncedFile(DbPath);
                    log = new SyncedFile(LogPath);
                }
                catch (IOException e)
                {
                    // Permissions or a read-only file system: not damage, so no repair hint.
                    throw new CniException(CniErrorCode.IoFailure, $"cannot open IPAM database: {e.Message}", null, e);
                }
                var created = data.Length == 0;
                using (Log.Time("ipam.open.engine"))
                    engine = new LiteEngine(new EngineSettings
                    {
                        DataStream = data,
                        LogStream = log,
                        Collation = Collation.Binary,
                    });
                if (created) Native.FsyncDirectory(DataDir);
                // Checkpoints are ours (after the log fsync, by size): LiteDB's default checkpoints on every close.
                if (engine.Pragma(Pragmas.CHECKPOINT).AsInt32 != 0) engine.Pragma(Pragmas.CHECKPOINT, 0);
                if (engine.Pragma(Pragmas.USER_VERSION).AsInt32 != SchemaVersion)
                    using (Log.Time("ipam.open.schema"))
                        UpgradeSchema(engine, log);
                return new Opened(data, log, engine);
            }
        }
        catch (Exception e)
        {
            try { engine?.Dispose(); } catch (Exception) { /* already failing; the original error matters */ }
            data?.Dispose();
            log?.Dispose();
            if (e is CniException) throw;
            throw Corrupt(e);
        }
    }

    /// <summary>
    /// New database or schema 1: the owner index, then the version. Each step is its own LiteDB transaction (pragmas
    /// cannot change inside one); the log is synced before the version is written, so a crash can leave the work
    /// done without the version (redone next time, it is idempotent) but never the version without the work.
    /// </summary>
    private void UpgradeSchema(LiteEngine engine, SyncedFile log)
    {
        var version = engine.Pragma(Pragmas.USER_VERSION).AsInt32;
        if (version > SchemaVersion)
            throw new CniException(CniErrorCode.IoFailure,
                $"IPAM database {DbPath} has schema {version}, written by a newer podbridge; this one reads schema {SchemaVersion}");
        engine.EnsureIndex(Tx.Leases, "owner", BsonExpression.Create("$.owner"), false);
        engine.DropCollection("meta");
        log.Sync();
        engine.Pragma(Pragmas.USER_VERSION, SchemaVersion);
        log.Sync();
    }

    private const int PageSize = 8192; // LiteDB's page: a healthy data file is whole pages

    /// <summary>
    /// LiteDB formats any empty or short file as a new database: after a truncation (a crash, an operator's
    /// "> file") that would silently forget every lease and hand live pods' addresses out again. Only a first
    /// open is allowed to start empty: neither file there yet, or just one of them, empty (a crash between
    /// creating the two). Once both files exist, an empty or partial data file is damage (code 105).
    /// </summary>
    private void CheckNotTruncated()
    {
        var dataInfo = new FileInfo(DbPath);
        var logInfo = new FileInfo(LogPath);
        var dataLength = dataInfo.Exists ? dataInfo.Length : 0;
        var logLength = logInfo.Exists ? logInfo.Length : 0;
        string? damage = null;
        if (dataLength % PageSize != 0)
            damage = $"its size {dataLength} is not a whole number of {PageSize}-byte pages";
        else if (dataLength == 0 && logLength > 0)
            damage = $"it is {(dataInfo.Exists ? "empty" : "missing")} but its log {LogPath} holds {logLength} bytes";
        else if (dataLength == 0 && dataInfo.Exists && logInfo.Exists)
            damage = "it is empty although the database was created before (its log file exists)";
        if (damage is not null)
            throw Corrupt(new InvalidDataException(damage));
    }

    internal CniException Corrupt(Exception e) => new(CniErrorCode.StoreCorrupt,
        $"IPAM database {DbPath} cannot be read ({e.Message}); the leases are still in it. " +
        $"Recover with: {RepairCommand} (rebuilds the file and keeps a backup copy)", e.GetType().Name, e);

    internal static string LeaseKey(string network, IpAddr a) => $"{network}|{(a.IsV6 ? '6' : '4')}|{a.ToHex()}";

    internal static string OwnerKey(string network, string containerId, string ifName) => $"{network}|{containerId}|{ifName}";

    internal sealed class Tx : ILeaseTransaction
    {
        internal const string Leases = "leases";
        private const string Cursors = "cursors";

        private readonly LiteDbLeaseStore _store;
        private readonly FileLock _lock;
        private readonly SyncedFile _data;
        private readonly SyncedFile _log;
        private readonly LiteEngine _engine;
        private readonly int _logSyncsAtStart, _dataSyncsAtStart;
        private bool _committed;
        private bool _failed;
        private bool _disposed;

        public Tx(LiteDbLeaseStore store, FileLock fileLock, Opened opened)
        {
            _store = store;
            _lock = fileLock;
            Opened = opened;
            _data = opened.Data;
            _log = opened.Log;
            _engine = opened.Engine;
            _logSyncsAtStart = _log.Syncs;
            _dataSyncsAtStart = _data.Syncs;
        }

        internal Opened Opened { get; }

        /// <summary>fdatasync calls so far on the log and data files (tests check commits reach the disk).</summary>
        public (int Log, int Data) Syncs => (_log.Syncs - _logSyncsAtStart, _data.Syncs - _dataSyncsAtStart);

        public LiteEngine Engine => _engine;

        public Lease? Get(string network, IpAddr address) => Guard(() =>
            FindById(Leases, LeaseKey(network, address)) is { } doc ? ToLease(doc) : null);

        public IReadOnlyList<Lease> GetByOwner(string network, string containerId, string ifName) => Guard(() =>
            Query(Leases, BsonExpression.Create("owner = @0", OwnerKey(network, containerId, ifName)))
                .Select(ToLease).ToList());

        public IEnumerable<IpAddr> Held(string network, IpAddr from, IpAddr to)
        {
            // Selecting only _id over the _id index is an index-key-only plan: no document is loaded.
            var where = BsonExpression.Create("_id BETWEEN @0 AND @1", LeaseKey(network, from), LeaseKey(network, to));
            using var e = Query(Leases, where, BsonExpression.Create("$._id")).GetEnumerator();
            while (Guard(e.MoveNext))
                yield return Guard(() =>
                {
                    var id = e.Current["_id"].AsString;
                    return IpAddr.FromHex(id[(id.LastIndexOf('|') + 1)..], from.IsV6);
                });
        }

        public IReadOnlyList<Lease> List(string network, IpAddr from, IpAddr to) => Guard(() =>
            Query(Leases, BsonExpression.Create("_id BETWEEN @0 AND @1", LeaseKey(network, from), LeaseKey(network, to)))
                .Select(ToLease).ToList());

        public IReadOnlyList<Lease> List(string? network) => Guard(() =>
            // '|' sorts after every character a network name may hold and "7" after the family tags "4" and "6".
            Query(Leases, network is null ? null : BsonExpression.Create("_id BETWEEN @0 AND @1", network + "|", network + "|7"))
                .Select(ToLease).ToList());

        /// <summary>
        /// Probe, then insert. LiteDB aborts the whole explicit transaction on any exception, including the
        /// unique index's duplicate key (LiteException 110), so "insert and catch" would throw away the rest of
        /// the ADD. Under the flock nobody writes between probe and insert; the unique _id index stays the
        /// backstop, and if it ever fires the transaction is gone, so the caller is told to retry (code 11).
        /// </summary>
        public bool TryReserve(Lease lease) => Guard(() =>
        {
            var key = LeaseKey(lease.Network, lease.Address);
            if (FindById(Leases, key) is not null) return false;
            try
            {
                _engine.Insert(Leases, [ToDocument(key, lease)], BsonAutoId.ObjectId);
            }
            catch (LiteException e) when (e.ErrorCode == LiteException.INDEX_DUPLICATE_KEY)
            {
                throw new CniException(CniErrorCode.TryAgainLater,
                    $"address {lease.Address} was reserved concurrently in {_store.DbPath}; the transaction was aborted, try again", null, e);
            }
            return true;
        });

        public bool Release(string network, IpAddr address) => Guard(() =>
            _engine.Delete(Leases, [new BsonValue(LeaseKey(network, address))]) > 0);

        /// <summary>For repair's salvage: a document copied as it is.</summary>
        internal void InsertRaw(string collection, BsonDocument doc) =>
            Guard(() => _engine.Insert(collection, [doc], BsonAutoId.ObjectId));

        public IpAddr? GetCursor(string network, int rangeSet) => Guard(() =>
            FindById(Cursors, $"{network}|{rangeSet}") is { } doc && IpAddr.TryParse(doc["ip"].AsString, out var a) ? a : (IpAddr?)null);

        public void SetCursor(string network, int rangeSet, IpAddr address) => Guard(() =>
            _engine.Upsert(Cursors, [new BsonDocument { ["_id"] = $"{network}|{rangeSet}", ["ip"] = address.ToString() }], BsonAutoId.ObjectId));

        /// <summary>LiteDB writes the transaction's pages to the log; the fdatasync after it is what makes it durable.</summary>
        public void Commit()
        {
            using (Log.Time("ipam.commit"))
            {
                try
                {
                    _engine.Commit();
                    _log.Sync();
                }
                catch (Exception e) when (e is not CniException)
                {
                    _failed = true;
                    throw new CniException(CniErrorCode.IoFailure, $"cannot write IPAM database {_store.DbPath}: {e.Message}", null, e);
                }
            }
            _committed = true;
            if (_log.Length > CheckpointPages * 8192L)
            {
                // Already durable in the log; a failed checkpoint is retried by the next invocation.
                using (Log.Time("ipam.checkpoint"))
                {
                    try { _engine.Checkpoint(); }
                    catch (Exception e) { Log.Warn($"IPAM checkpoint of {_store.DbPath} failed: {e.Message}"); }
                }
            }
        }

        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            using (Log.Time("ipam.close"))
            {
                try
                {
                    if (!_committed) _engine.Rollback();
                }
                catch (Exception e)
                {
                    // Never mask the exception that may be unwinding through this Dispose.
                    _failed = true;
                    Log.Warn($"closing IPAM database {_store.DbPath}: {e.Message}");
                }
                try
                {
                    _store.Finished(this, _lock, _failed);
                }
                finally
                {
                    _lock.Dispose();
                }
            }
        }

        private BsonDocument? FindById(string collection, string id) =>
            Query(collection, BsonExpression.Create("_id = @0", id)).FirstOrDefault();

        private IEnumerable<BsonDocument> Query(string collection, BsonExpression? where, BsonExpression? select = null)
        {
            // ForUpdate: every read here may be followed by a write in the same transaction.
            var q = new Query { ForUpdate = true };
            if (where is not null) q.Where.Add(where);
            if (select is not null) q.Select = select;
            using var reader = _engine.Query(collection, q);
            while (reader.Read())
                yield return reader.Current.IsDocument ? reader.Current.AsDocument : new BsonDocument { ["_id"] = reader.Current };
        }

        /// <summary>
        /// A damaged file surfaces from deep inside LiteDB as almost any exception type (LiteException,
        /// NotSupportedException "BSON type not supported", InvalidCastException, IndexOutOfRange...): all are 105.
        /// </summary>
        private T Guard<T>(Func<T> f)
        {
            try { return f(); }
            catch (Exception e) when (e is not CniException and not OutOfMemoryException)
            {
                _failed = true;
                throw _store.Corrupt(e);
            }
        }

        private void Guard(Func<int> f) => Guard<int>(f);

        private static BsonDocument ToDocument(string key, Lease l)
        {
            var doc = new BsonDocument
            {
                ["_id"] = key,
                ["owner"] = OwnerKey(l.Network, l.ContainerId, l.IfName),
                ["net"] = l.Network,
                ["ip"] = l.Address.ToString(),
                ["set"] = l.RangeSet,
                ["cid"] = l.ContainerId,
                ["ifname"] = l.IfName,
                ["boot"] = l.BootId,
                ["netns"] = l.NetNsPath,
                // st_dev/st_ino are unsigned; BSON has only signed 64-bit integers (the bits round-trip).
                ["nsdev"] = unchecked((long)l.NetNs.Dev),
                ["nsino"] = unchecked((long)l.NetNs.Ino),
                ["created"] = l.Created.ToUnixTimeMilliseconds(),
            };
            if (l.PodNamespace is not null) doc["podns"] = l.PodNamespace;
            if (l.PodName is not null) doc["pod"] = l.PodName;
            return doc;
        }

        /// <summary>Strict: a document missing a field or holding the wrong type is damage, not a lease.</summary>
        internal static Lease ToLease(BsonDocument d)
        {
            static string Str(BsonDocument d, string k) =>
                d.TryGetValue(k, out var v) && v.IsString ? v.AsString : throw new FormatException($"lease {d["_id"]} has no valid '{k}'");
            static long Long(BsonDocument d, string k) =>
                d.TryGetValue(k, out var v) && v.IsNumber ? v.AsInt64 : throw new FormatException($"lease {d["_id"]} has no valid '{k}'");
            static string? OptStr(BsonDocument d, string k) => d.TryGetValue(k, out var v) && v.IsString ? v.AsString : null;

            if (!IpAddr.TryParse(Str(d, "ip"), out var ip)) throw new FormatException($"lease {d["_id"]} has an invalid ip");
            var lease = new Lease(Str(d, "net"), ip, (int)Long(d, "set"), Str(d, "cid"), Str(d, "ifname"))
            {
                PodNamespace = OptStr(d, "podns"),
                PodName = OptStr(d, "pod"),
                BootId = Str(d, "boot"),
                NetNsPath = Str(d, "netns"),
                NetNs = new NetNsId(unchecked((ulong)Long(d, "nsdev")), unchecked((ulong)Long(d, "nsino"))),
                Created = DateTimeOffset.FromUnixTimeMilliseconds(Long(d, "created")),
            };
            if (Str(d, "_id") != LeaseKey(lease.Network, ip) || Str(d, "owner") != OwnerKey(lease.Network, lease.ContainerId, lease.IfName))
                throw new FormatException($"lease {d["_id"]} does not match its own keys");
            return lease;
        }
    }
}
