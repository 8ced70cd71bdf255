using System.Diagnostics;

namespace PodBridge.Bench;

/// <summary>
/// The measurement phases. Every phase interleaves the plugins invocation by invocation, alternating
/// which one goes first (A B, B A, ...), so slow drift of the machine lands on both equally.
/// </summary>
internal sealed class Runner(BenchOptions options, Sandbox sandbox, Recorder recorder)
{
    private readonly List<Side> _sides = [];
    private WarmIpamServer? _server;

    public List<string> Notes { get; } = [];

    /// <summary>The warm IPAM server's peak RSS (VmHWM) at the end of the run, KiB.</summary>
    public long? ServerPeakRssKiB { get; private set; }

    /// <summary>One plugin's networks and namespace pool (no seeded network for the warm side).</summary>
    private sealed record Side(PluginUnderTest Plugin, BenchNetwork Main, BenchNetwork? Seeded, IReadOnlyList<string> Netns, IPoolSeeder Seeder);

    public void Run()
    {
        try
        {
            Setup();
            Step("warm-up", () => { foreach (var s in _sides) Warmup(s.Main); });
            Step($"sequential VERSION/ADD/CHECK/DEL, {options.Pods} pods", Sequential);
            Step($"burst of {options.Burst}, {options.Width} at a time, {options.BurstRounds} round(s)", Bursts);
            Step($"empty pool vs {options.SeedLeases} leases, {options.SeedPods} pods", SeededPool);
        }
        finally
        {
            ServerPeakRssKiB = _server?.PeakRssKiB();
            _server?.Dispose();
        }
    }

    private void Step(string name, Action action)
    {
        Console.Error.Write($"- {name} ... ");
        var sw = Stopwatch.StartNew();
        action();
        Console.Error.WriteLine($"{sw.Elapsed.TotalSeconds:F1} s");
    }

    private void Setup()
    {
        int poolSize = Math.Max(options.Pods, Math.Max(options.Burst, 2 * options.SeedPods));
        var id = sandbox.RunId;
        if (options.RunPodbridge)
        {
            var p = PluginUnderTest.Podbridge(options.BinDir);
            _sides.Add(new Side(p,
                new BenchNetwork(p, $"pbb{id}-pb", sandbox.BridgeName('A'), "10.251.0.0/16", sandbox.DataDir("pb")),
                new BenchNetwork(p, $"pbb{id}-pb-seeded", sandbox.BridgeName('C'), "10.253.0.0/16", sandbox.DataDir("pb-seeded")),
                sandbox.CreateNamespaces("a", poolSize),
                new PodbridgeSeeder()));
        }
        if (options.RunPodbridge && options.Warm)
        {
            var p = PluginUnderTest.PodbridgeWarm(options.BinDir);
            var dataDir = sandbox.DataDir("pb-warm");
            _server = WarmIpamServer.Start(Path.Combine(options.BinDir, "podbridge-ipam"), dataDir);
            _sides.Add(new Side(p,
                new BenchNetwork(p, $"pbb{id}-pbw", sandbox.BridgeName('E'), "10.250.0.0/16", dataDir),
                null,
                sandbox.CreateNamespaces("w", poolSize),
                new PodbridgeSeeder()));
        }
        if (options.RunPodbridge && options.Logged)
        {
            var p = PluginUnderTest.PodbridgeLogged(options.BinDir, Path.Combine(sandbox.DataDir("pb-log"), "podbridge.log"));
            Directory.CreateDirectory(sandbox.DataDir("pb-log"));
            _sides.Add(new Side(p,
                new BenchNetwork(p, $"pbb{id}-pbl", sandbox.BridgeName('F'), "10.249.0.0/16", sandbox.DataDir("pb-log")),
                null,
                sandbox.CreateNamespaces("l", poolSize),
                new PodbridgeSeeder()));
        }
        if (options.RunReference)
        {
            var p = PluginUnderTest.Reference(options.CniDir);
            _sides.Add(new Side(p,
                new BenchNetwork(p, $"pbb{id}-ref", sandbox.BridgeName('B'), "10.252.0.0/16", sandbox.DataDir("ref")),
                new BenchNetwork(p, $"pbb{id}-ref-seeded", sandbox.BridgeName('D'), "10.254.0.0/16", sandbox.DataDir("ref-seeded")),
                sandbox.CreateNamespaces("b", poolSize),
                new HostLocalSeeder()));
        }
    }

    /// <summary>Unrecorded cycles: the first ADD creates the bridge, and caches get warm for both sides.</summary>
    private void Warmup(BenchNetwork network)
    {
        var side = _sides.Single(s => s.Main == network || s.Seeded == network);
        var pod = new Pod(network, side.Netns[0], 0);
        for (int i = 0; i < options.Warmup; i++)
        {
            pod.Renew();
            Cni.Invoke(pod, Verb.Add);
            Cni.Invoke(pod, Verb.Check);
            Cni.Invoke(pod, Verb.Del);
        }
    }

    /// <summary>The sides in an order that alternates with <paramref name="i"/>.</summary>
    private IEnumerable<T> Rotate<T>(IReadOnlyList<T> items, int i) =>
        Enumerable.Range(0, items.Count).Select(k => items[(k + i) % items.Count]);

    private void Sequential()
    {
        var pods = _sides.Select(s => Enumerable.Range(0, options.Pods).Select(i => new Pod(s.Main, s.Netns[i], i)).ToList()).ToList();
        // VERSION is start-up plus one line: the binary's floor (the warm side runs the same binary, so not twice).
        var versionPods = pods.Where(l => l[0].Network.Plugin.Label is not (PluginUnderTest.WarmLabel or PluginUnderTest.LoggedLabel)).ToList();
        for (int i = 0; i < options.Pods; i++)
            foreach (var list in Rotate(versionPods, i))
                recorder.Add(list[i].Network.Plugin.Label, Scenario.Version, Cni.Invoke(list[i], Verb.Version));
        foreach (var (verb, scenario) in new[] { (Verb.Add, Scenario.Add), (Verb.Check, Scenario.Check), (Verb.Del, Scenario.Del) })
        {
            for (int i = 0; i < options.Pods; i++)
                foreach (var list in Rotate(pods, i))
                {
                    var pod = list[i];
                    recorder.Add(pod.Network.Plugin.Label, scenario, Cni.Invoke(pod, verb));
                }
        }
    }

    private void Bursts()
    {
        var pods = _sides.Select(s => Enumerable.Range(0, options.Burst).Select(i => new Pod(s.Main, s.Netns[i], i)).ToList()).ToList();
        for (int round = 0; round < options.BurstRounds; round++)
        {
            foreach (var list in Rotate(pods, round))
            {
                list.ForEach(p => p.Renew());
                RunBurst(list, Verb.Add, Scenario.BurstAdd, Scenario.BurstAddMakespan);
                var addresses = list.Select(p => p.Address!.ToString()).ToList();
                if (addresses.Distinct().Count() != addresses.Count)
                    throw new PluginFailure($"{list[0].Network.Plugin.Label}: burst ADD handed out the same address twice");
            }
            foreach (var list in Rotate(pods, round))
                RunBurst(list, Verb.Del, Scenario.BurstDel, Scenario.BurstDelMakespan);
        }
    }

    /// <summary>
    /// <see cref="BenchOptions.Width"/> dedicated threads (not the thread pool, whose slow thread
    /// injection would throttle blocking waits) pull pods from a shared counter; the makespan runs
    /// from releasing the threads until the last invocation has exited.
    /// </summary>
    private void RunBurst(List<Pod> pods, Verb verb, string scenario, string makespanScenario)
    {
        int next = -1;
        Exception? failure = null;
        using var go = new ManualResetEventSlim(false);
        var threads = Enumerable.Range(0, options.Width).Select(_ => new Thread(() =>
        {
            go.Wait();
            int i;
            while (Volatile.Read(ref failure) is null && (i = Interlocked.Increment(ref next)) < pods.Count)
            {
                try
                {
                    var pod = pods[i];
                    recorder.Add(pod.Network.Plugin.Label, scenario, Cni.Invoke(pod, verb));
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                }
            }
        }) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        long start = Stopwatch.GetTimestamp();
        go.Set();
        threads.ForEach(t => t.Join());
        var elapsed = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (failure is not null)
            throw failure is OperationCanceledException ? new OperationCanceledException() : failure;
        recorder.AddMakespan(pods[0].Network.Plugin.Label, makespanScenario, elapsed);
    }

    private void SeededPool()
    {
        foreach (var s in _sides.Where(s => s.Seeded is not null))
        {
            var note = $"{s.Plugin.Label} seeded pool {s.Seeded!.Subnet}: {s.Seeder.Seed(s.Seeded, options.SeedLeases)}";
            Console.Error.Write($"\n  {note} ");
            Notes.Add(note);
            Warmup(s.Seeded);
        }

        // Each side measures M pods in its (now empty again) main pool and M in its seeded pool;
        // all four variants interleave.
        var variants = new List<(List<Pod> Pods, string Add, string Del, bool Seeded)>();
        foreach (var s in _sides.Where(s => s.Seeded is not null))
        {
            variants.Add((Enumerable.Range(0, options.SeedPods).Select(i => new Pod(s.Main, s.Netns[i], i)).ToList(),
                Scenario.AddEmpty, Scenario.DelEmpty, false));
            variants.Add((Enumerable.Range(0, options.SeedPods).Select(i => new Pod(s.Seeded!, s.Netns[options.SeedPods + i], i)).ToList(),
                Scenario.AddSeeded, Scenario.DelSeeded, true));
        }
        for (int i = 0; i < options.SeedPods; i++)
            foreach (var v in Rotate(variants, i))
            {
                var pod = v.Pods[i];
                recorder.Add(pod.Network.Plugin.Label, v.Add, Cni.Invoke(pod, Verb.Add));
                // A seeding the plugin did not honour would show up here as a reused address.
                long offset = pod.Network.OffsetOf(pod.Address!);
                if (v.Seeded && offset <= options.SeedLeases + 1)
                    throw new PluginFailure(
                        $"{pod.Network.Plugin.Label}: ADD in the seeded pool got {pod.Address}, which is one of the {options.SeedLeases} seeded leases");
            }
        for (int i = 0; i < options.SeedPods; i++)
            foreach (var v in Rotate(variants, i))
            {
                var pod = v.Pods[i];
                recorder.Add(pod.Network.Plugin.Label, v.Del, Cni.Invoke(pod, Verb.Del));
            }
    }
}

/// <summary>`podbridge-ipam serve` for the warm side's data dir: started before the warm-up, killed at the end.</summary>
internal sealed class WarmIpamServer : IDisposable
{
    private readonly Process _process;

    private WarmIpamServer(Process process) => _process = process;

    public static WarmIpamServer Start(string binary, string dataDir)
    {
        var psi = new ProcessStartInfo(binary, ["serve", "--data-dir", dataDir])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        var ready = new ManualResetEventSlim(false);
        var p = new Process { StartInfo = psi };
        // One line per request on stderr: drained, not kept.
        p.ErrorDataReceived += (_, e) => { if (e.Data?.StartsWith("podbridge-ipam serve: serving", StringComparison.Ordinal) == true) ready.Set(); };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        var server = new WarmIpamServer(p);
        if (!ready.Wait(TimeSpan.FromSeconds(20)))
        {
            server.Dispose();
            throw new PluginFailure($"podbridge-ipam serve --data-dir {dataDir} did not come up");
        }
        return server;
    }

    public long? PeakRssKiB()
    {
        try
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or FormatException) { return null; }
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                _process.WaitForExit(10_000);
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}
