using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using PodBridge.Cri;

namespace PodBridge.Bench;

/// <summary>
/// `--cri`: what kubelet sees. RunPodSandbox / StopPodSandbox / RemovePodSandbox latency through a private
/// containerd's CRI (gRPC on its unix socket, the client the CRI scenarios use), podbridge vs the reference
/// bridge + host-local, one runtime handler per plugin in the same containerd, interleaved pod by pod (which
/// plugin goes first alternates). The figures include containerd's own work (pause container via runc,
/// netns, loopback plugin), the same for both; the difference between the columns is the plugins'.
/// </summary>
internal static class CriBench
{
    public const string Usage = """
        usage: sudo dotnet run -c Release --project bench/PodBridge.Bench -- --cri [options]
          --pods N        measured pods per plugin (default 40; --smoke: 3)
          --warmup N      unrecorded pods per plugin first (default 3; --smoke: 1)
          --bin-dir D     podbridge binaries (default <repo>/artifacts/bin)
          --cni-dir D     reference plugins, loopback (default /usr/lib/cni)
          --out D         results directory (default <repo>/bench/results; writes cri.md, not with --smoke)
          --smoke         a few pods, asserts only that every call succeeds and nothing is left
        """;

    private static readonly string[] Ops = ["RunPodSandbox", "StopPodSandbox", "RemovePodSandbox"];

    public static async Task<int> Run(string[] args)
    {
        int pods = 40, warmup = 3;
        var smoke = args.Contains("--smoke");
        if (smoke) (pods, warmup) = (3, 1);
        string binDir = Path.Combine(RepoPaths.Root, "artifacts", "bin"), cniDir = "/usr/lib/cni";
        string outDir = Path.Combine(RepoPaths.Root, "bench", "results");
        try
        {
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--cri" or "--smoke": break;
                    case "--pods": pods = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--warmup": warmup = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                    case "--bin-dir": binDir = Path.GetFullPath(Value()); break;
                    case "--cni-dir": cniDir = Path.GetFullPath(Value()); break;
                    case "--out": outDir = Path.GetFullPath(Value()); break;
                    case "-h" or "--help": Console.WriteLine(Usage); return 0;
                    default: throw new ArgumentException($"unknown option {args[i]}");
                }
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
        {
            Console.Error.WriteLine($"error: {e.Message}\n{Usage}");
            return 2;
        }
        if (Native.geteuid() != 0)
        {
            Console.Error.WriteLine("error: the CRI benchmark runs containerd and creates bridges; run it as root (sudo).");
            return 2;
        }
        var bins = new Dictionary<string, string>
        {
            ["podbridge"] = Path.Combine(binDir, "podbridge"),
            ["podbridge-ipam"] = Path.Combine(binDir, "podbridge-ipam"),
            ["bridge"] = Path.Combine(cniDir, "bridge"),
            ["host-local"] = Path.Combine(cniDir, "host-local"),
            ["loopback"] = Path.Combine(cniDir, "loopback"),
        };
        if (bins.Values.Where(f => !File.Exists(f)).ToList() is { Count: > 0 } missing)
        {
            Console.Error.WriteLine($"error: missing plugin binaries: {string.Join(", ", missing)}");
            return 2;
        }

        // A shared machine's load moves these figures more than anything: the report states it.
        var loadBefore = LoadAverage();
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };

        var sandbox = new Sandbox("/var/tmp");
        // Short: containerd's socket path must fit sockaddr_un.
        var dir = Path.Combine("/tmp", $"pbb{sandbox.RunId}-cri");
        var octet = RandomNumberGenerator.GetInt32(256);
        var plugins = new[]
        {
            new Plugin("podbridge", "podbridge", "podbridge-ipam", sandbox.BridgeName('x'), $"10.247.{octet}.0/24", sandbox.DataDir("cri-pb")),
            new Plugin("reference", "bridge", "host-local", sandbox.BridgeName('y'), $"10.246.{octet}.0/24", sandbox.DataDir("cri-ref")),
        };
        var samples = plugins.ToDictionary(p => p.Label, _ => Ops.ToDictionary(o => o, _ => new List<double>()));
        Containerd? containerd = null;
        var exit = 0;
        try
        {
            Directory.CreateDirectory(dir);
            containerd = await Containerd.Start(new ContainerdOptions(dir, bins,
                plugins.Select(p => new CriNetwork(p.Label, p.Conflist(sandbox.RunId))).ToList()), cancel.Token);
            var version = await containerd.Runtime.VersionAsync(new PodBridge.Cri.V1.VersionRequest(), cancellationToken: cancel.Token);
            Console.Error.WriteLine($"podbridge CRI bench run {sandbox.RunId}: {version.RuntimeName} {version.RuntimeVersion} (CRI {version.RuntimeApiVersion}), {pods} pods per plugin after {warmup} warm-up");

            for (var i = 0; i < warmup + pods; i++)
            {
                // Interleaved: each pod index runs through both plugins, and the order flips every pod.
                foreach (var p in i % 2 == 0 ? plugins : [plugins[1], plugins[0]])
                {
                    var times = await Cycle(containerd, p, $"pod-{i}", cancel.Token);
                    if (i < warmup) continue;
                    for (var o = 0; o < Ops.Length; o++) samples[p.Label][Ops[o]].Add(times[o]);
                }
            }
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted");
            exit = 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"FAILED: {e.Message}{(containerd is null ? "" : "\ncontainerd log:\n" + containerd.LogTail(20))}");
            exit = 1;
        }
        finally
        {
            if (containerd is not null) await containerd.DisposeAsync();
            else Containerd.ForceCleanup(dir);
            sandbox.Dispose();
            var left = sandbox.Leftovers().Concat(Directory.Exists(dir) ? [dir] : []).ToList();
            if (left.Count > 0)
            {
                Console.Error.WriteLine($"FAILED: left behind after cleanup: {string.Join(", ", left)}");
                exit = exit == 0 ? 1 : exit;
            }
        }
        if (exit != 0) return exit;

        var table = Table(samples, pods);
        Console.WriteLine(table);
        if (!smoke)
        {
            Directory.CreateDirectory(outDir);
            var md = new StringBuilder()
                .AppendLine("# CRI sandbox latency (bench --cri)")
                .AppendLine()
                .AppendLine($"{Tool.TryRun("/usr/bin/containerd", ["--version"])?.Trim()}; {Environment.ProcessorCount} CPUs; " +
                            $"{pods} pods per plugin, interleaved, after {warmup} warm-up; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; " +
                            $"load average before/after: {loadBefore} / {LoadAverage()}.")
                .AppendLine("Times are what a CRI client (kubelet) waits for, containerd's own work included; ratio = podbridge / reference median.")
                .AppendLine()
                .Append(table);
            File.WriteAllText(Path.Combine(outDir, "cri.md"), md.ToString());
            Console.Error.WriteLine($"wrote {Path.Combine(outDir, "cri.md")}");
        }
        return 0;
    }

    /// <summary>Run, Stop, Remove one pod; each call timed alone (ms). Also checks the pod got an address.</summary>
    private static async Task<double[]> Cycle(Containerd containerd, Plugin p, string name, CancellationToken ct)
    {
        var config = Pods.SandboxConfig(name, "bench", Guid.NewGuid().ToString(), containerd.CgroupParent);
        var t = Stopwatch.GetTimestamp();
        var id = await containerd.Runtime.Run(config, p.Label, ct);
        var run = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        var ip = (await containerd.Runtime.Status(id, ct: ct)).Status.Network.Ip;
        if (string.IsNullOrEmpty(ip)) throw new InvalidOperationException($"{p.Label}: sandbox {id} has no IP");
        t = Stopwatch.GetTimestamp();
        await containerd.Runtime.Stop(id, ct);
        var stop = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        t = Stopwatch.GetTimestamp();
        await containerd.Runtime.Remove(id, ct);
        var remove = Stopwatch.GetElapsedTime(t).TotalMilliseconds;
        return [run, stop, remove];
    }

    private static string Table(Dictionary<string, Dictionary<string, List<double>>> samples, int pods)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| CRI call | podbridge median | podbridge p90 | reference median | reference p90 | ratio |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach (var op in Ops.Append("Run+Stop+Remove"))
        {
            IEnumerable<double> Values(string label) => op == "Run+Stop+Remove"
                ? Enumerable.Range(0, pods).Select(i => Ops.Sum(o => samples[label][o][i]))
                : samples[label][op];
            var pb = Summary.Of(Values("podbridge"))!;
            var rf = Summary.Of(Values("reference"))!;
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"| {op} | {pb.Median:F1} ms | {pb.P90:F1} ms | {rf.Median:F1} ms | {rf.P90:F1} ms | {pb.Median / rf.Median:F2} |");
        }
        return sb.ToString();
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private sealed record Plugin(string Label, string Type, string IpamType, string Bridge, string Subnet, string DataDir)
    {
        public string Conflist(string runId) => new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = $"pbb{runId}-cri-{Label}",
            ["plugins"] = new JsonArray(new JsonObject
            {
                ["type"] = Type,
                ["bridge"] = Bridge,
                ["isGateway"] = true,
                ["isDefaultGateway"] = true,
                ["ipam"] = new JsonObject
                {
                    ["type"] = IpamType,
                    ["dataDir"] = DataDir,
                    ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet })),
                },
            }),
        }.ToJsonString();
    }
}
