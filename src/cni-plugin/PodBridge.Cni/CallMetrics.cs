using System.Buffers.Text;
using System.Globalization;
using System.Text;

namespace PodBridge.Cni;

/// <summary>
/// Counters of plugin calls (verb, result code, latency) for <c>podbridge metrics</c>, kept without a daemon and
/// without an fsync: each plugin process appends one line "plugin network VERB code microseconds" to
/// <c>calls</c> in the metrics dir (tmpfs /run/podbridge by default, so counters restart with the node, which
/// Prometheus treats as a counter reset). Whoever finds the file large, and <c>podbridge metrics</c> always,
/// folds it under LOCK_EX into <c>totals</c> (written by rename) and truncates it; appenders hold LOCK_SH, so
/// no call is counted twice or lost (<see cref="SharedFile"/>).
/// </summary>
public static class CallMetrics
{
    public const string DefaultDir = "/run/podbridge";
    public const string DirVariable = "PODBRIDGE_METRICS_DIR";
    private const long FoldAbove = 1 << 20;

    /// <summary>Histogram upper bounds in seconds (Prometheus "le"); +Inf is implied.</summary>
    public static readonly double[] Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    public static string Dir => Environment.GetEnvironmentVariable(DirVariable) is { Length: > 0 } d ? d : DefaultDir;

    /// <summary>One call, appended by the plugin at exit. Never throws: metrics must not fail a pod.</summary>
    public static void Record(string plugin, string network, string verb, int code, TimeSpan elapsed)
    {
        if (Environment.GetEnvironmentVariable(DirVariable) == "off") return;
        try
        {
            var dir = Dir;
            var path = Path.Combine(dir, "calls");
            var line = Encoding.UTF8.GetBytes(string.Create(CultureInfo.InvariantCulture,
                $"{plugin} {(network.Length == 0 ? "-" : network)} {verb} {code} {(long)elapsed.TotalMicroseconds}\n"));
            long size;
            try { size = SharedFile.Append(path, line, long.MaxValue); }
            catch (IOException) when (!Directory.Exists(dir))
            {
                Directory.CreateDirectory(dir);
                size = SharedFile.Append(path, line, long.MaxValue);
            }
            if (size > FoldAbove) Fold(dir, wait: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Log.Debug($"metrics not recorded: {e.Message}");
        }
    }

    /// <summary>One counter series: calls of (plugin, network, verb, code) with their latency histogram.</summary>
    public sealed class Series
    {
        public long Count;
        public long SumMicros;
        public readonly long[] BucketCounts = new long[Buckets.Length]; // cumulative per "le"
    }

    /// <summary>Folds the calls file into the totals and returns them (the metrics command's read).</summary>
    public static SortedDictionary<(string Plugin, string Network, string Verb, int Code), Series> Fold(string dir, bool wait = true)
    {
        var totals = ReadTotals(Path.Combine(dir, "totals"));
        var changed = false;
        if (!Directory.Exists(dir)) return totals;
        SharedFile.DrainExclusive(Path.Combine(dir, "calls"), content =>
        {
            foreach (var (key, calls) in CountLines(content))
            {
                var f = key.Split(' ');
                var k = (f[0], f[1], f[2], int.Parse(f[3], CultureInfo.InvariantCulture));
                if (!totals.TryGetValue(k, out var s)) totals[k] = s = new Series();
                s.Count += calls.Count;
                s.SumMicros += calls.SumMicros;
                for (var i = 0; i < Buckets.Length; i++) s.BucketCounts[i] += calls.BucketCounts[i];
                changed = true;
            }
            // Totals are replaced before the calls file is truncated: a crash in between counts calls twice at
            // worst, never loses them.
            if (changed) SharedFile.WriteAtomically(Path.Combine(dir, "totals"), WriteTotals(totals));
        }, wait);
        return totals;
    }

    /// <summary>
    /// The calls file's lines "plugin network VERB code microseconds", counted per "plugin network VERB code" straight
    /// from the bytes. The fold runs inside whichever plugin call finds the file past 1 MiB (~20,000 lines): splitting
    /// it into strings cost that call ~40 ms and 25 MiB of memory; this allocates one string per distinct series.
    /// Malformed lines (a torn last line, say) are skipped.
    /// </summary>
    internal static Dictionary<string, Series> CountLines(ReadOnlySpan<byte> content)
    {
        var series = new Dictionary<string, Series>(StringComparer.Ordinal);
        var lookup = series.GetAlternateLookup<ReadOnlySpan<char>>();
        Span<char> key = stackalloc char[256];
        while (!content.IsEmpty)
        {
            var end = content.IndexOf((byte)'\n');
            var line = end < 0 ? content : content[..end];
            content = end < 0 ? default : content[(end + 1)..];

            var last = line.LastIndexOf((byte)' ');
            if (last <= 0 || !Utf8Parser.TryParse(line[(last + 1)..], out long micros, out var used) || used != line.Length - last - 1)
                continue;
            var keyBytes = line[..last];
            var codeAt = keyBytes.LastIndexOf((byte)' ') + 1;
            if (keyBytes.Count((byte)' ') != 3 || keyBytes.IndexOf("  "u8) >= 0 || keyBytes[0] == (byte)' '
                || !Utf8Parser.TryParse(keyBytes[codeAt..], out int _, out used) || used != keyBytes.Length - codeAt
                || keyBytes.Length > key.Length)
                continue;
            var n = Encoding.UTF8.GetChars(keyBytes, key);
            if (!lookup.TryGetValue(key[..n], out var s))
                series[new string(key[..n])] = s = new Series();
            s.Count++;
            s.SumMicros += micros;
            for (var i = 0; i < Buckets.Length; i++)
                if (micros <= Buckets[i] * 1e6) s.BucketCounts[i]++;
        }
        return series;
    }

    private static SortedDictionary<(string, string, string, int), Series> ReadTotals(string path)
    {
        var totals = new SortedDictionary<(string, string, string, int), Series>();
        if (!File.Exists(path)) return totals;
        foreach (var line in File.ReadAllLines(path))
        {
            var f = line.Split(' ');
            if (f.Length != 6 + Buckets.Length) continue;
            var s = new Series
            {
                Count = long.Parse(f[4], CultureInfo.InvariantCulture),
                SumMicros = long.Parse(f[5], CultureInfo.InvariantCulture),
            };
            for (var i = 0; i < Buckets.Length; i++) s.BucketCounts[i] = long.Parse(f[6 + i], CultureInfo.InvariantCulture);
            totals[(f[0], f[1], f[2], int.Parse(f[3], CultureInfo.InvariantCulture))] = s;
        }
        return totals;
    }

    private static byte[] WriteTotals(SortedDictionary<(string, string, string, int), Series> totals)
    {
        var sb = new StringBuilder();
        foreach (var ((plugin, network, verb, code), s) in totals)
        {
            sb.Append(CultureInfo.InvariantCulture, $"{plugin} {network} {verb} {code} {s.Count} {s.SumMicros}");
            foreach (var b in s.BucketCounts) sb.Append(' ').Append(b.ToString(CultureInfo.InvariantCulture));
            sb.Append('\n');
        }
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
