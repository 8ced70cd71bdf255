using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// The stress tests (SIGKILL, 64-way concurrency) run alone: on 2 cores another test's processes would both slow
/// them and make their figures meaningless.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StressCollection
{
    public const string Name = "reliability stress";
}

/// <summary>
/// One (containerID, ifname) attachment in a netns the test owns. Unlike <see cref="TestPod"/>, several may share
/// one netns (eth0, eth1, ...), which keeps a 200-attachment test from spending its time creating namespaces.
/// </summary>
public sealed record Attachment(TestNetNs NetNs, string ContainerId, string IfName)
{
    public CniCall Call(string command, JsonObject conf, string args = "") => new(command)
    {
        ContainerId = ContainerId,
        NetNs = NetNs.Path,
        IfName = IfName,
        Args = args,
        Stdin = conf.ToJsonString(),
    };

    public static Attachment Of(TestPod pod) => new(pod.NetNs, pod.ContainerId, pod.IfName);

    public override string ToString() => $"{ContainerId}/{IfName} in {NetNs.Name}";
}

/// <summary>Disposes everything it was given, last first, and keeps going when one Dispose throws.</summary>
public sealed class Owned : IDisposable
{
    private readonly List<IDisposable> _items = [];

    public T Add<T>(T item) where T : IDisposable
    {
        lock (_items) _items.Add(item);
        return item;
    }

    public void Dispose()
    {
        List<Exception> errors = [];
        IDisposable[] items;
        lock (_items) { items = [.. _items]; _items.Clear(); }
        for (var i = items.Length - 1; i >= 0; i--)
        {
            try { items[i].Dispose(); }
            catch (Exception e) { errors.Add(e); }
        }
        if (errors.Count > 0) throw new AggregateException("cleanup failed", errors);
    }
}

/// <summary>One line of `podbridge-ipam leases`, with the fields the reliability tests look at.</summary>
public sealed record LeaseLine(string Network, string Ip, string ContainerId, string IfName, string? PodNamespace, string? PodName, bool Dead)
{
    public (string, string) Owner => (ContainerId, IfName);
}

/// <summary>What the operator sees: `podbridge-ipam leases --data-dir DIR`.</summary>
public static class LeaseList
{
    /// <summary>
    /// Every lease of <paramref name="net"/>. The command must exit 0 (the database opens) and every line must be a
    /// JSON object: both are what "an operator can trust the lease list" means.
    /// </summary>
    public static async Task<IReadOnlyList<LeaseLine>> Of(TestNetwork net) =>
        (await All(net.DataDir)).Where(l => l.Network == net.Name).ToList();

    public static async Task<IReadOnlyList<LeaseLine>> All(string dataDir)
    {
        var r = await Sh.Run(Binaries.PodBridgeIpam, "leases", "--data-dir", dataDir);
        if (!r.Ok) throw new XunitException($"the lease database does not open: {r}");
        var lines = new List<LeaseLine>();
        foreach (var line in r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            JsonObject o;
            try { o = JsonNode.Parse(line) as JsonObject ?? throw new JsonException("not an object"); }
            catch (JsonException e) { throw new XunitException($"`leases` printed a line that is not a JSON object ({e.Message}): {line}\n{r}"); }
            lines.Add(new LeaseLine(
                Str(o, "network", line), Kernel.AddressOf(Str(o, "ip", line)), Str(o, "containerID", line), Str(o, "ifname", line),
                (string?)o["podNamespace"], (string?)o["podName"], o["dead"] is JsonValue d && (bool)d));
        }
        return lines;
    }

    private static string Str(JsonObject o, string key, string line) =>
        (string?)o[key] ?? throw new XunitException($"`leases` line lacks '{key}': {line}");
}

/// <summary>Kernel views the reliability tests need beyond <see cref="Kernel"/>: whole-namespace listings in one `ip` call.</summary>
public static class KernelView
{
    /// <summary>Links of the node netns other than lo and the bridge: after every DEL there must be none.</summary>
    public static async Task<IReadOnlyList<LinkState>> StrayNodeLinks(TestNetwork net) =>
        (await Kernel.Links(net.NodeNs)).Where(l => l.Name != "lo" && l.Name != net.Bridge).ToList();

    /// <summary>Links of a pod netns other than lo.</summary>
    public static async Task<IReadOnlyList<LinkState>> PodLinks(TestNetNs ns) =>
        (await Kernel.Links(ns.Name)).Where(l => l.Name != "lo").ToList();

    /// <summary>ifname → global (non-link-local) addresses, for every link of the netns except lo.</summary>
    public static async Task<Dictionary<string, List<AddrState>>> GlobalAddressesByLink(TestNetNs ns)
    {
        var r = (await Sh.Ip(ns.Name, "-j", "addr", "show")).EnsureOk();
        var map = new Dictionary<string, List<AddrState>>(StringComparer.Ordinal);
        foreach (var link in JsonNode.Parse(r.Stdout)?.AsArray() ?? [])
        {
            var name = (string?)link?["ifname"];
            if (name is null or "lo") continue;
            map[name] = (link!["addr_info"]?.AsArray() ?? [])
                .Where(a => a is not null)
                .Select(a => new AddrState((string)a!["family"]!, (string)a["local"]!, (int)a["prefixlen"]!,
                    a["tentative"] is JsonValue t && (bool)t))
                .Where(a => !a.IsLinkLocal)
                .ToList();
        }
        return map;
    }

    public static async Task<IReadOnlyList<string>> BridgePortNames(TestNetwork net) =>
        (await Kernel.BridgePorts(net.NodeNs, net.Bridge)).Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
}

/// <summary>Assertions shared by the reliability tests.</summary>
public static class Must
{
    /// <summary>
    /// A refused ADD left nothing: no interface in the pod netns, no lease for the container, and the bridge still has
    /// exactly <paramref name="portsBefore"/> (no host veth of the failed attempt, attached or not: the node netns
    /// holds nothing but lo, the bridge and those ports).
    /// </summary>
    public static async Task HaveLeftNothing(TestNetwork net, Attachment failed, IReadOnlyList<string> portsBefore)
    {
        if (await Kernel.LinkExists(failed.NetNs.Name, failed.IfName))
            throw new XunitException($"the failed ADD left {failed.IfName} in {failed.NetNs}");
        var leases = await LeaseList.Of(net);
        if (leases.Any(l => l.ContainerId == failed.ContainerId))
            throw new XunitException($"the failed ADD left a lease: {string.Join(", ", leases.Where(l => l.ContainerId == failed.ContainerId))}");
        var ports = await KernelView.BridgePortNames(net);
        if (!ports.SequenceEqual(portsBefore.Order(StringComparer.Ordinal)))
            throw new XunitException($"bridge ports changed: before [{string.Join(", ", portsBefore)}], after [{string.Join(", ", ports)}]");
        if (net.Node is not null)
        {
            var stray = (await KernelView.StrayNodeLinks(net)).Select(l => l.Name).Except(portsBefore).ToList();
            if (stray.Count > 0) throw new XunitException($"the failed ADD left link(s) in the node netns: {string.Join(", ", stray)}");
        }
    }

    /// <summary>The IPv4 and IPv6 addresses (no prefix) of an ADD result, in result order.</summary>
    public static List<string> ResultAddresses(JsonObject result) =>
        (result["ips"]?.AsArray() ?? []).Select(i => Kernel.AddressOf((string)i!["address"]!)).ToList();

    public static string HostVethOf(JsonObject result) => (string)result["interfaces"]![1]!["name"]!;
}

/// <summary>Test sizes from the environment (a slow machine can scale them down), and small statistics for the printed figures.</summary>
public static class Knobs
{
    public static int Int(string name, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0) return 0;
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>How one invocation under fault injection ended.</summary>
public sealed record KillOutcome(CniCall Call, bool Killed, int ExitCode, string Stdout, string Stderr, TimeSpan KillAfter, TimeSpan Elapsed)
{
    public JsonNode? Json
    {
        get
        {
            if (string.IsNullOrWhiteSpace(Stdout)) return null;
            try { return JsonNode.Parse(Stdout); }
            catch (JsonException) { return null; }
        }
    }

    public int? ErrorCode => Json is JsonObject o && o["code"] is JsonValue v && v.TryGetValue<int>(out var c) ? c : null;

    public override string ToString() =>
        $"{Call.Command} {Call.ContainerId}/{Call.IfName} in {Call.NetNs}: {(Killed ? "SIGKILLed" : $"exit {ExitCode}")} " +
        $"(kill at {KillAfter.TotalMilliseconds:F2} ms, ran {Elapsed.TotalMilliseconds:F1} ms)\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>
/// Runs a plugin as a runtime would (same environment as <see cref="PluginRunner"/>), then SIGKILLs it a given time
/// after spawn: the crash a node sees when kubelet, containerd or the kernel's OOM killer takes a plugin down mid-work.
/// Uses Process directly because the kill must land at a chosen moment, not when a cancellation gets around to it.
/// </summary>
public static class KillingRunner
{
    private const int SigKillExitCode = 128 + 9;

    /// <summary>Synchronous on purpose: the kill delay is timed with sleep + spin on this thread, not a timer.</summary>
    public static KillOutcome Run(string binary, CniCall call, TimeSpan? killAfter)
    {
        var psi = call.NodeNetNs is null
            ? new ProcessStartInfo(binary)
            : new ProcessStartInfo("ip") { ArgumentList = { "netns", "exec", call.NodeNetNs, binary } };
        psi.UseShellExecute = false;
        psi.RedirectStandardInput = true;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.Environment["CNI_COMMAND"] = call.Command;
        psi.Environment["CNI_CONTAINERID"] = call.ContainerId;
        psi.Environment["CNI_NETNS"] = call.NetNs;
        psi.Environment["CNI_IFNAME"] = call.IfName;
        psi.Environment["CNI_ARGS"] = call.Args;
        psi.Environment["CNI_PATH"] = call.Path;
        psi.Environment.Remove("PODBRIDGE_LOG_FILE");
        psi.Environment.Remove("PODBRIDGE_LOG_LEVEL");

        using var p = Process.Start(psi) ?? throw new XunitException($"cannot start {binary}");
        var started = Stopwatch.GetTimestamp();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        try
        {
            p.StandardInput.Write(call.Stdin);
            p.StandardInput.Close();
        }
        catch (IOException)
        {
            // Killed (or exited) before reading stdin: EPIPE.
        }

        if (killAfter is { } delay)
        {
            WaitUntil(started, delay);
            try { p.Kill(); } // SIGKILL; a no-op if it already exited
            catch (InvalidOperationException) { }
        }
        if (!p.WaitForExit((int)PluginRunner.Timeout.TotalMilliseconds))
        {
            p.Kill(entireProcessTree: true);
            throw new XunitException($"{binary} {call.Command} {call.ContainerId} did not finish within {PluginRunner.Timeout.TotalSeconds}s");
        }
        var elapsed = Stopwatch.GetElapsedTime(started);
        return new KillOutcome(call, p.ExitCode == SigKillExitCode, p.ExitCode, stdout.Result, stderr.Result, killAfter ?? TimeSpan.Zero, elapsed);
    }

    /// <summary>Sleeps most of the delay and spins the last millisecond: Thread.Sleep alone is only ms-accurate.</summary>
    private static void WaitUntil(long started, TimeSpan delay)
    {
        while (true)
        {
            var left = delay - Stopwatch.GetElapsedTime(started);
            if (left <= TimeSpan.Zero) return;
            if (left > TimeSpan.FromMilliseconds(1.5)) Thread.Sleep(left - TimeSpan.FromMilliseconds(1));
            else Thread.SpinWait(20);
        }
    }
}

/// <summary>Network configs the reliability tests share.</summary>
public static class Configs
{
    /// <summary>The first /29 of the network's /24: gateway .1 on the bridge, five pod addresses .2-.6.</summary>
    public const int Slash29Capacity = 5;

    public static string Slash29(TestNetwork net) => $"10.250.{net.Octet}.0/29";

    public static JsonObject Slash29Config(TestNetwork net, string cniVersion = "1.0.0")
    {
        var conf = net.Config(PluginFlavor.PodBridge, cniVersion);
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(Slash29(net))));
        return conf;
    }
}
