using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>
/// Names every kernel object and file this test run creates: "pbt" + 4 hex chars of run id + 4 hex chars of
/// a counter (11 bytes, inside IFNAMSIZ). Everything carrying <see cref="Prefix"/> is ours, so the last-resort
/// cleanup at process exit can delete it without touching anything else — including the objects of another
/// test run going on at the same time (different run id).
/// Runs that crashed before their cleanup are swept at the next start through a marker file holding their pid.
/// </summary>
public static class RunScope
{
    private const string MarkerDir = "/run/podbridge-it";
    private static int _counter;

    public static string Prefix { get; } = "pbt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2));

    /// <summary>A fresh 11-character name for a netns, bridge or dummy link.</summary>
    public static string NewName() => $"{Prefix}{Interlocked.Increment(ref _counter) & 0xffff:x4}";

    /// <summary>A container id a runtime could send: unique, valid (^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$), traceable to this run.</summary>
    public static string NewContainerId(string tag = "c") =>
        $"{Prefix}-{tag}-{Interlocked.Increment(ref _counter):x4}-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}";

    /// <summary>A fresh temp directory under /tmp named with the prefix (so the sweep finds it too).</summary>
    public static string NewTempDir(string tag)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{NewName()}-{tag}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Where the plugins under test count their calls (PODBRIDGE_METRICS_DIR): one temp dir per run.</summary>
    public static string MetricsDir => LazyMetricsDir.Value;
    private static readonly Lazy<string> LazyMetricsDir = new(() => NewTempDir("metrics"));

    /// <summary>Touch this once from any fixture so the exit hook and the crash sweep are installed.</summary>
    public static void EnsureInitialized() => _ = Initialized;

    private static readonly bool Initialized = Initialize();

    private static bool Initialize()
    {
        try
        {
            Directory.CreateDirectory(MarkerDir);
            SweepCrashedRuns();
            File.WriteAllText(Path.Combine(MarkerDir, $"{Environment.ProcessId}-{Prefix}"), Prefix);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Not root or /run read-only: the per-test Dispose cleanup still applies.
        }
        AppDomain.CurrentDomain.ProcessExit += (_, _) => CleanupRun(Prefix, Environment.ProcessId);
        return true;
    }

    private static void SweepCrashedRuns()
    {
        foreach (var marker in Directory.GetFiles(MarkerDir))
        {
            var parts = Path.GetFileName(marker).Split('-', 2);
            if (parts.Length != 2 || !int.TryParse(parts[0], out var pid) || !parts[1].StartsWith("pbt", StringComparison.Ordinal)) continue;
            if (IsAlive(pid)) continue;
            CleanupRun(parts[1], pid);
        }
        // A private containerd whose run has no marker any more (a runner that did not know containerd dirs swept
        // the run, or the marker was lost): the run is over, so the instance is a leftover.
        var live = Directory.GetFiles(MarkerDir).Select(m => Path.GetFileName(m).Split('-', 2)).Where(p => p.Length == 2).Select(p => p[1]).ToHashSet();
        foreach (var dir in PodBridge.Cri.Containerd.InstanceDirs(Path.GetTempPath().TrimEnd('/'), "pbt"))
            if (Path.GetFileName(dir) is { Length: > 7 } name && !live.Contains(name[..7]) && name[..7] != Prefix)
            {
                try { PodBridge.Cri.Containerd.ForceCleanup(dir); }
                catch (IOException e) { Console.Error.WriteLine($"podbridge integration sweep: {e.Message}"); }
            }
    }

    private static bool IsAlive(int pid)
    {
        try { using var p = Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
    }

    /// <summary>
    /// Deletes every netns, link and temp dir named with <paramref name="prefix"/>. Synchronous on purpose: it runs
    /// from ProcessExit, where nothing async can be awaited.
    /// </summary>
    public static void CleanupRun(string prefix, int pid)
    {
        try
        {
            // podman first: its containers hold netns named by podman, which only podman can find.
            foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), prefix + "*-podman"))
                PodmanEnv.ForceCleanup(dir);
            // Private containerds (CRI tests) next: their sandboxes hold pod netns and veths on our bridges.
            foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), prefix + "*-containerd"))
            {
                try { PodBridge.Cri.Containerd.ForceCleanup(dir); }
                catch (IOException e) { Console.Error.WriteLine($"podbridge integration cleanup: {e.Message}"); }
            }
            // portmap rules of this run's networks (named with the prefix), even when the containerd dir is gone.
            PodBridge.Cri.Containerd.RemovePortmapRules(line => line.Contains($"dnat name: \\\"{prefix}", StringComparison.Ordinal));
            // portmap's shared chains and the ip6 nat table, when this run's record proves it created them.
            foreach (var record in Directory.GetFiles(Path.GetTempPath(), prefix + "*-containerd" + PodBridge.Cri.HostPortmapState.RecordSuffix))
                PodBridge.Cri.HostPortmapState.SweepCrashedRun(record);

            foreach (var ns in NetnsNames().Where(n => n.StartsWith(prefix, StringComparison.Ordinal)))
                RunSync("ip", "netns", "delete", ns);

            // Ports first: a deleted bridge leaves its veths behind in the host namespace.
            var links = LinkNamesWithMaster();
            var bridges = links.Where(l => l.Name.StartsWith(prefix, StringComparison.Ordinal)).Select(l => l.Name).ToHashSet();
            foreach (var port in links.Where(l => l.Master is not null && bridges.Contains(l.Master)))
                RunSync("ip", "link", "delete", port.Name);
            foreach (var name in bridges)
                RunSync("ip", "link", "delete", name);

            foreach (var dir in Directory.GetDirectories(Path.GetTempPath(), prefix + "*"))
                TryDeleteDirectory(dir);
            File.Delete(Path.Combine(MarkerDir, $"{pid}-{prefix}"));
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"podbridge integration cleanup for {prefix}: {e.Message}");
        }
    }

    public static void TryDeleteDirectory(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // podman's vfs storage can hold read-only dirs; rm copes with those.
            RunSync("rm", "-rf", dir);
        }
    }

    private static IEnumerable<string> NetnsNames()
    {
        var (_, json) = RunSync("ip", "-j", "netns", "list");
        if (string.IsNullOrWhiteSpace(json)) return [];
        return JsonNode.Parse(json)!.AsArray().Select(n => (string?)n?["name"]).OfType<string>().ToList();
    }

    private static List<(string Name, string? Master)> LinkNamesWithMaster()
    {
        var (_, json) = RunSync("ip", "-j", "link", "show");
        if (string.IsNullOrWhiteSpace(json)) return [];
        return JsonNode.Parse(json)!.AsArray()
            .Select(n => ((string?)n?["ifname"], (string?)n?["master"]))
            .Where(t => t.Item1 is not null)
            .Select(t => (t.Item1!, t.Item2))
            .ToList();
    }

    private static (int ExitCode, string Stdout) RunSync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEnd();
        p.StandardError.ReadToEnd();
        if (!p.WaitForExit(30_000)) p.Kill(entireProcessTree: true);
        return (p.ExitCode, stdout);
    }
}
