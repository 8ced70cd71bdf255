using System.Globalization;

namespace PodBridge.Bench;

internal enum Only { Both, Podbridge, Reference }

internal sealed record BenchOptions
{
    public bool Smoke { get; init; }
    public int Pods { get; init; } = 50;
    public int Burst { get; init; } = 200;
    public int Width { get; init; } = 8;
    public int BurstRounds { get; init; } = 3;
    public int SeedLeases { get; init; } = 60_000;
    public int SeedPods { get; init; } = 20;
    public int Warmup { get; init; } = 3;
    public string BinDir { get; init; } = Path.Combine(RepoPaths.Root, "artifacts", "bin");
    public string CniDir { get; init; } = "/usr/lib/cni";
    public string DataParent { get; init; } = "/var/tmp";
    public string OutDir { get; init; } = Path.Combine(RepoPaths.Root, "bench", "results");
    public Only Only { get; init; } = Only.Both;
    public bool Warm { get; init; } = true;
    public bool Logged { get; init; } = true;

    public bool RunPodbridge => Only != Only.Reference;
    public bool RunReference => Only != Only.Podbridge;

    public const string Usage = """
        usage: sudo dotnet run -c Release --project bench/PodBridge.Bench -- [options]
          --smoke             CI mode: 3 pods, burst of 16, 200 seeded leases; asserts no timing
          --pods N            sequential pods for ADD/CHECK/DEL (default 50)
          --burst N           pods per burst (default 200)
          --width N           concurrent invocations in a burst (default 8)
          --burst-rounds N    bursts per plugin, interleaved (default 3)
          --seed-leases N     leases pre-populated in the seeded /16 pool (default 60000)
          --seed-pods N       pods measured against the seeded and the empty pool (default 20)
          --warmup N          unrecorded ADD/CHECK/DEL cycles per network (default 3)
          --bin-dir D         podbridge binaries (default <repo>/artifacts/bin)
          --cni-dir D         reference plugins (default /usr/lib/cni)
          --data-dir D        parent of the run's IPAM data dirs (default /var/tmp)
          --out D             results directory (default <repo>/bench/results)
          --only P            podbridge | reference | both (default both)
          --no-warm           skip the warm side (podbridge with `podbridge-ipam serve` on its data dir)
        """;

    public static BenchOptions Parse(string[] args)
    {
        var o = args.Contains("--smoke")
            ? new BenchOptions { Smoke = true, Pods = 3, Burst = 16, BurstRounds = 1, SeedLeases = 200, SeedPods = 3, Warmup = 1 }
            : new BenchOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Value(), NumberStyles.None, CultureInfo.InvariantCulture) is var n and > 0
                ? n : throw new ArgumentException($"{args[i]} must be positive");
            o = args[i] switch
            {
                "--smoke" => o,
                "--pods" => o with { Pods = Int() },
                "--burst" => o with { Burst = Int() },
                "--width" => o with { Width = Int() },
                "--burst-rounds" => o with { BurstRounds = Int() },
                "--seed-leases" => o with { SeedLeases = Int() },
                "--seed-pods" => o with { SeedPods = Int() },
                "--warmup" => o with { Warmup = Int() },
                "--bin-dir" => o with { BinDir = Path.GetFullPath(Value()) },
                "--cni-dir" => o with { CniDir = Path.GetFullPath(Value()) },
                "--data-dir" => o with { DataParent = Path.GetFullPath(Value()) },
                "--out" => o with { OutDir = Path.GetFullPath(Value()) },
                "--only" => o with
                {
                    Only = Value() switch
                    {
                        "both" => Only.Both,
                        "podbridge" => Only.Podbridge,
                        "reference" => Only.Reference,
                        var v => throw new ArgumentException($"--only {v}: expected podbridge, reference or both"),
                    },
                },
                "--no-warm" => o with { Warm = false },
                "--no-log-side" => o with { Logged = false },
                "-h" or "--help" => throw new HelpRequested(),
                var a => throw new ArgumentException($"unknown option {a}"),
            };
        }
        // A /16 holds 65534 hosts; keep room for the gateway and the measured pods.
        if (o.SeedLeases > 65_534 - 1 - 2 * (o.SeedPods + o.Warmup))
            throw new ArgumentException("--seed-leases leaves no room in the /16 for the measured pods");
        return o;
    }
}

internal sealed class HelpRequested : Exception;

internal static class RepoPaths
{
    /// <summary>The repository root: the nearest ancestor of the bench binary holding CniPlugin.sln.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "CniPlugin.sln")))
                    return d.FullName;
        }
        return Directory.GetCurrentDirectory();
    }
}
