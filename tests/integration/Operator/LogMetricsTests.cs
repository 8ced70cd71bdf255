using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Operator;

/// <summary>JSON log lines and Prometheus metrics, parsed back; log rotation under many concurrent processes.</summary>
public sealed class LogMetricsTests
{
    [Fact]
    public async Task Json_log_lines_carry_the_call_context_steps_and_addresses()
    {
        using var node = await OperatorNode.Create(p => p["logLevel"] = "info");
        using var pod = await TestPod.Create();
        (await node.Call("ADD", pod)).AssertSuccess();
        (await node.Call("ADD", pod)).AssertError(); // the duplicate fails: an error line with its code
        (await node.Call("DEL", pod)).AssertSilentSuccess();

        var lines = (await File.ReadAllLinesAsync(node.LogFile)).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.All(lines, l =>
        {
            Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", (string)l["time"]!);
            Assert.Equal(pod.ContainerId, (string?)l["containerId"]);
            Assert.Equal("eth0", (string?)l["ifname"]);
            Assert.Equal("team-a", (string?)l["podNamespace"]);
            Assert.Equal($"web-{pod.NetNs.Name}", (string?)l["podName"]);
            Assert.Equal(node.Net.Name, (string?)l["network"]);
        });
        var add = lines.Single(l => (string?)l["verb"] == "ADD" && (int?)l["code"] == 0);
        Assert.Equal("info", (string?)add["level"]);
        Assert.Equal(node.Net.V4(2) + "/24", (string?)add["addresses"]![0]);
        Assert.True((double)add["durationMs"]! > 0);
        Assert.True((double)add["stepsMs"]!["netlink.veth"]! > 0);
        Assert.True((double)add["stepsMs"]!["ipam.add"]! > 0);
        var failed = lines.Single(l => (string?)l["verb"] == "ADD" && (int?)l["code"] is > 0);
        Assert.Equal("error", (string?)failed["level"]);
        Assert.Contains("already", (string?)failed["error"]);
        Assert.Contains(lines, l => (string?)l["verb"] == "DEL" && (int?)l["code"] == 0);
    }

    [Fact]
    public async Task Rotation_under_many_concurrent_processes_loses_and_interleaves_no_line()
    {
        var dir = RunScope.NewTempDir("rotate");
        try
        {
            var logFile = Path.Combine(dir, "podbridge.log");
            const int processes = 64;
            // Each process writes one ~300-byte line: ~19 KB in all, so a 12 KB limit rotates exactly once and the
            // one old file kept holds everything written before it.
            var stdin = $"{{\"cniVersion\":\"0.3.1\",\"name\":\"rotate\",\"type\":\"podbridge\",\"logFile\":\"{logFile}\",\"logFormat\":\"json\",\"logMaxSize\":12000}}";
            var runs = Enumerable.Range(0, processes).Select(i => PluginRunner.Run(Binaries.PodBridge, new CniCall("CHECK")
            {
                ContainerId = $"rotate{i:d3}",
                NetNs = "/proc/self/ns/net",
                IfName = "eth0",
                Stdin = stdin,
                Extra = new Dictionary<string, string> { ["PODBRIDGE_METRICS_DIR"] = Path.Combine(dir, "metrics") },
            }));
            Assert.All(await Task.WhenAll(runs), o => o.AssertError(1));

            Assert.True(File.Exists(logFile + ".1"), "the file was never rotated");
            var lines = (await File.ReadAllLinesAsync(logFile + ".1")).Concat(await File.ReadAllLinesAsync(logFile)).ToList();
            Assert.True(new FileInfo(logFile + ".1").Length > 12000);
            Assert.True(new FileInfo(logFile).Length <= 12000);
            var ids = lines.Select(l => (string)JsonNode.Parse(l)!["containerId"]!).Order().ToList();
            Assert.Equal(Enumerable.Range(0, processes).Select(i => $"rotate{i:d3}"), ids);
        }
        finally
        {
            RunScope.TryDeleteDirectory(dir);
        }
    }

    private static readonly Regex Sample = new(@"^([a-z_]+)\{([^}]*)\} (\S+)$");

    private static Dictionary<string, double> ParsePrometheus(string text)
    {
        var samples = new Dictionary<string, double>();
        string? type = null;
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            if (line.StartsWith("# TYPE ", StringComparison.Ordinal))
            {
                type = line.Split(' ')[3];
                Assert.Contains(type, new[] { "gauge", "counter", "histogram" });
                continue;
            }
            var m = Sample.Match(line);
            Assert.True(m.Success, $"not a Prometheus sample: {line}");
            Assert.NotNull(type);
            samples[$"{m.Groups[1].Value}{{{m.Groups[2].Value}}}"] = double.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
        }
        return samples;
    }

    [Fact]
    public async Task Metrics_report_pool_usage_reclaimable_leases_and_call_counters()
    {
        using var node = await OperatorNode.Create();
        var pods = await TestPod.CreateMany(3);
        try
        {
            foreach (var p in pods) (await node.Call("ADD", p)).AssertSuccess();
            (await node.Call("ADD", pods[0])).AssertError(); // duplicate
            (await node.Call("DEL", pods[1])).AssertSilentSuccess();
            await pods[2].NetNs.Delete(); // its lease is now reclaimable

            var outFile = Path.Combine(node.Dir, "podbridge.prom");
            var r = await node.Cli("metrics", "--out", outFile);
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal("", r.Stdout);
            var m = ParsePrometheus(await File.ReadAllTextAsync(outFile));
            var net = node.Net.Name;
            var set = $"network=\"{net}\",range_set=\"0\",ranges=\"{node.Net.V4(1)}-{node.Net.V4(254)}\"";
            Assert.Equal(253, m[$"podbridge_pool_size{{{set}}}"]);
            Assert.Equal(2, m[$"podbridge_pool_used{{{set}}}"]);
            Assert.Equal(251, m[$"podbridge_pool_free{{{set}}}"]);
            Assert.Equal(1, m[$"podbridge_leases_reclaimable{{network=\"{net}\"}}"]);
            Assert.Equal(1, m[$"podbridge_lease_store_up{{network=\"{net}\"}}"]);
            Assert.Equal(3, m[$"podbridge_calls_total{{plugin=\"podbridge\",network=\"{net}\",verb=\"ADD\",code=\"0\"}}"]);
            Assert.Equal(1, m[$"podbridge_calls_total{{plugin=\"podbridge\",network=\"{net}\",verb=\"ADD\",code=\"104\"}}"]);
            Assert.Equal(1, m[$"podbridge_calls_total{{plugin=\"podbridge\",network=\"{net}\",verb=\"DEL\",code=\"0\"}}"]);
            var add = $"plugin=\"podbridge\",network=\"{net}\",verb=\"ADD\"";
            Assert.Equal(4, m[$"podbridge_call_duration_seconds_count{{{add}}}"]);
            Assert.Equal(4, m[$"podbridge_call_duration_seconds_bucket{{{add},le=\"+Inf\"}}"]);
            Assert.True(m[$"podbridge_call_duration_seconds_sum{{{add}}}"] > 0);
            Assert.True(m[$"podbridge_call_duration_seconds_bucket{{{add},le=\"0.005\"}}"] <= m[$"podbridge_call_duration_seconds_bucket{{{add},le=\"10\"}}"]);

            // Folded counters survive the fold: the next scrape after one more call counts on from there.
            (await node.Call("DEL", pods[0])).AssertSilentSuccess();
            var again = ParsePrometheus((await node.Cli("metrics")).EnsureOk().Stdout);
            Assert.Equal(2, again[$"podbridge_calls_total{{plugin=\"podbridge\",network=\"{net}\",verb=\"DEL\",code=\"0\"}}"]);
            Assert.Equal(3, again[$"podbridge_calls_total{{plugin=\"podbridge\",network=\"{net}\",verb=\"ADD\",code=\"0\"}}"]);
        }
        finally
        {
            foreach (var p in pods) p.Dispose();
        }
    }
}
