using System.Runtime.InteropServices;
using PodBridge.Bench;

// The CRI benchmark (--cri) is a mode of its own, containerd in the loop: see CriBench.cs.
if (args.Contains("--cri"))
    return await CriBench.Run(args);

// Exit codes: 0 ran (targets met or not — timing is never a failure), 1 a plugin or the bench failed
// functionally, 2 bad usage or environment, 130 interrupted.
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (HelpRequested)
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine($"error: {e.Message}\n{BenchOptions.Usage}");
    return 2;
}

if (Native.geteuid() != 0)
{
    Console.Error.WriteLine("error: the benchmark creates network namespaces and bridges; run it as root (sudo).");
    return 2;
}

var missing = new List<string>();
if (options.RunPodbridge)
    missing.AddRange(new[] { "podbridge", "podbridge-ipam" }.Select(b => Path.Combine(options.BinDir, b)).Where(f => !File.Exists(f)));
if (options.RunReference)
    missing.AddRange(new[] { "bridge", "host-local" }.Select(b => Path.Combine(options.CniDir, b)).Where(f => !File.Exists(f)));
if (missing.Count > 0)
{
    Console.Error.WriteLine($"error: missing plugin binaries: {string.Join(", ", missing)}");
    if (options.RunPodbridge)
        Console.Error.WriteLine("  publish podbridge first (dotnet publish src/cni-plugin/podbridge -c Release -o artifacts/bin, same for src/ipam/podbridge-ipam),\n  pass --bin-dir, or measure the reference alone with --only reference.");
    return 2;
}

Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    Cancellation.Request();
    Console.Error.WriteLine("\ninterrupted: finishing the current invocation, then cleaning up");
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
{
    ctx.Cancel = true;
    Cancellation.Request();
});

var recorder = new Recorder();
var machine = MachineInfo.Collect(options.BinDir);
int exitCode = 0;
List<string> notes = [];
long? serverRssKiB = null;
var sandbox = new Sandbox(options.DataParent);
try
{
    Console.Error.WriteLine($"podbridge bench run {sandbox.RunId}: {(options.Smoke ? "smoke" : "full")}, plugins: {options.Only.ToString().ToLowerInvariant()}");
    var runner = new Runner(options, sandbox, recorder);
    try
    {
        runner.Run();
    }
    finally
    {
        notes = runner.Notes;
        serverRssKiB = runner.ServerPeakRssKiB;
    }
}
catch (OperationCanceledException)
{
    Console.Error.WriteLine("interrupted");
    exitCode = 130;
}
catch (PluginFailure e)
{
    Console.Error.WriteLine($"FAILED: {e.Message}");
    exitCode = 1;
}
catch (Exception e)
{
    Console.Error.WriteLine($"FAILED: {e}");
    exitCode = 1;
}
finally
{
    sandbox.Dispose();
    var left = sandbox.Leftovers();
    if (left.Count > 0)
    {
        Console.Error.WriteLine($"FAILED: left behind after cleanup: {string.Join(", ", left)}");
        exitCode = exitCode == 0 ? 1 : exitCode;
    }
}
if (exitCode != 0)
    return exitCode;

var report = new Report(options, recorder, machine, notes, serverRssKiB);
Console.WriteLine(report.ConsoleTable());
Directory.CreateDirectory(options.OutDir);
// A smoke run must not overwrite the committed full results.
var stem = options.Smoke ? "smoke" : "latest";
File.WriteAllBytes(Path.Combine(options.OutDir, stem + ".json"), report.Json());
File.WriteAllText(Path.Combine(options.OutDir, stem + ".md"), report.Markdown());
Console.Error.WriteLine($"wrote {Path.Combine(options.OutDir, stem)}.json and .md");
return 0;
