using System.Globalization;
using System.Text;
using PodBridge.Cni;
using PodBridge.Ipam;
using PodBridge.Netlink;

namespace PodBridge.Plugin.Cli;

/// <summary>
/// <c>podbridge metrics</c>: Prometheus text exposition format (version 0.0.4) for node-exporter's textfile
/// collector — pool size/used/free per network and range set, leases waiting for reclamation, and the call
/// counters the plugin keeps (<see cref="CallMetrics"/>). With --out the file is replaced atomically.
/// </summary>
internal static class MetricsCommand
{
    public static int Run(CliOptions options, TextWriter stdout)
    {
        var text = new StringBuilder();
        var failed = false;
        using (var rt = RtNetlinkSocket.Open())
        {
            var states = NetworkState.ReadAll(options, rt);
            try
            {
                Header(text, "podbridge_pool_size", "gauge", "Allocatable addresses of a range set (gateway excluded).");
                var used = new StringBuilder();
                var free = new StringBuilder();
                foreach (var s in states)
                {
                    if (s.Network.Ipam is not { } ipam || s.Tx is null)
                    {
                        failed |= s.StoreError is not null;
                        if (s.Network.Ipam is { } empty && s.StoreError is null)
                            foreach (var set in empty.RangeSets)
                            {
                                var l = Labels(s.Network.Name, set);
                                Sample(text, "podbridge_pool_size", l, set.Capacity);
                                Sample(used, "podbridge_pool_used", l, UInt128.Zero);
                                Sample(free, "podbridge_pool_free", l, set.Capacity);
                            }
                        continue;
                    }
                    foreach (var (set, size, inUse) in LeaseSweep.Usage(s.Tx, ipam))
                    {
                        var l = Labels(s.Network.Name, set);
                        Sample(text, "podbridge_pool_size", l, size);
                        Sample(used, "podbridge_pool_used", l, inUse);
                        Sample(free, "podbridge_pool_free", l, size > inUse ? size - inUse : UInt128.Zero);
                    }
                }
                Header(text, "podbridge_pool_used", "gauge", "Addresses of a range set held by a lease.");
                text.Append(used);
                Header(text, "podbridge_pool_free", "gauge", "Addresses of a range set free to allocate.");
                text.Append(free);
                Header(text, "podbridge_leases_reclaimable", "gauge", "Leases whose pod is provably gone (another boot, or netns gone): `podbridge gc` releases them.");
                foreach (var s in states.Where(s => s.Tx is not null))
                    Sample(text, "podbridge_leases_reclaimable", $"network=\"{s.Network.Name}\"", (UInt128)s.Dead.Sum(d => d.Leases.Count));
                Header(text, "podbridge_lease_store_up", "gauge", "1 when the network's lease store opens cleanly.");
                foreach (var s in states.Where(s => s.Network.Ipam is not null))
                    Sample(text, "podbridge_lease_store_up", $"network=\"{s.Network.Name}\"", s.StoreError is null ? UInt128.One : UInt128.Zero);
            }
            finally
            {
                foreach (var s in states) s.Dispose();
            }
        }

        var calls = CallMetrics.Fold(options.MetricsDir);
        Header(text, "podbridge_calls_total", "counter", "Plugin invocations by verb and result code (0 = success, else the CNI error code).");
        foreach (var ((plugin, network, verb, code), s) in calls)
            if (options.Network is null || options.Network == network)
                text.Append(CultureInfo.InvariantCulture, $"podbridge_calls_total{{plugin=\"{plugin}\",network=\"{network}\",verb=\"{verb}\",code=\"{code}\"}} {s.Count}\n");
        Header(text, "podbridge_call_duration_seconds", "histogram", "Wall time of a plugin invocation, start to exit.");
        foreach (var g in calls.Where(c => options.Network is null || options.Network == c.Key.Network)
                     .GroupBy(c => (c.Key.Plugin, c.Key.Network, c.Key.Verb)))
        {
            var labels = $"plugin=\"{g.Key.Plugin}\",network=\"{g.Key.Network}\",verb=\"{g.Key.Verb}\"";
            for (var i = 0; i < CallMetrics.Buckets.Length; i++)
                text.Append(CultureInfo.InvariantCulture,
                    $"podbridge_call_duration_seconds_bucket{{{labels},le=\"{CallMetrics.Buckets[i].ToString(CultureInfo.InvariantCulture)}\"}} {g.Sum(c => c.Value.BucketCounts[i])}\n");
            text.Append(CultureInfo.InvariantCulture, $"podbridge_call_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {g.Sum(c => c.Value.Count)}\n");
            text.Append(CultureInfo.InvariantCulture, $"podbridge_call_duration_seconds_sum{{{labels}}} {(g.Sum(c => c.Value.SumMicros) / 1e6).ToString("0.######", CultureInfo.InvariantCulture)}\n");
            text.Append(CultureInfo.InvariantCulture, $"podbridge_call_duration_seconds_count{{{labels}}} {g.Sum(c => c.Value.Count)}\n");
        }

        var bytes = Encoding.UTF8.GetBytes(text.ToString());
        if (options.Out is { } file) SharedFile.WriteAtomically(file, bytes);
        else stdout.Write(text.ToString());
        return failed ? 1 : 0;
    }

    private static string Labels(string network, RangeSet set) =>
        $"network=\"{network}\",range_set=\"{set.Index}\",ranges=\"{string.Join(" ", set.Ranges.Select(r => $"{r.Start}-{r.End}"))}\"";

    private static void Header(StringBuilder text, string name, string type, string help) =>
        text.Append($"# HELP {name} {help}\n# TYPE {name} {type}\n");

    private static void Sample(StringBuilder text, string name, string labels, UInt128 value) =>
        text.Append($"{name}{{{labels}}} {value}\n");
}
