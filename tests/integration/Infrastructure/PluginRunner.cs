using System.Text.Json;
using System.Text.Json.Nodes;
using CliWrap;
using CliWrap.Buffered;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>
/// One plugin invocation as a runtime (libcni) makes it: all six CNI_* variables exported ("" for the unused
/// ones), the config on stdin. <see cref="Unset"/> removes variables entirely (for the "missing variable" cases);
/// <see cref="Extra"/> adds or overrides others.
/// </summary>
public sealed record CniCall(string Command)
{
    public string ContainerId { get; init; } = "";
    public string NetNs { get; init; } = "";
    public string IfName { get; init; } = "";
    public string Args { get; init; } = "";
    public string Path { get; init; } = "";
    public string Stdin { get; init; } = "";
    public IReadOnlyCollection<string> Unset { get; init; } = [];
    public IReadOnlyDictionary<string, string> Extra { get; init; } = new Dictionary<string, string>();

    /// <summary>When set, the plugin runs inside this netns (`ip netns exec`), which then plays the node.</summary>
    public string? NodeNetNs { get; init; }
}

/// <summary>What the plugin did: exit code, raw stdout/stderr, and stdout parsed as JSON when it is JSON.</summary>
public sealed record CniOutcome(CniCall Call, string Binary, int ExitCode, string Stdout, string Stderr, TimeSpan Elapsed)
{
    private readonly Lazy<JsonNode?> _json = new(() => TryParse(Stdout));

    /// <summary>
    /// Spec-strict checks (error object carries cniVersion). Off for the reference plugins, whose 1.1.1 release
    /// prints errors without it.
    /// </summary>
    public bool Strict { get; init; } = true;

    public bool Succeeded => ExitCode == 0;
    public JsonNode? Json => _json.Value;
    public JsonObject Result => Json as JsonObject ?? throw Fail("stdout is not a JSON object");
    public int? ErrorCode => Json is JsonObject o && o["code"] is JsonValue v && v.TryGetValue<int>(out var c) ? c : null;
    public string? ErrorMessage => Json is JsonObject o ? (string?)o["msg"] : null;

    public CniOutcome AssertSuccess()
    {
        if (ExitCode != 0) throw Fail("expected exit code 0");
        return this;
    }

    /// <summary>Success with nothing on stdout (DEL, CHECK, GC, STATUS).</summary>
    public CniOutcome AssertSilentSuccess()
    {
        AssertSuccess();
        if (Stdout.Trim().Length != 0) throw Fail("expected no output on stdout");
        return this;
    }

    /// <summary>
    /// A failure reported the CNI way: non-zero exit and one JSON error object on stdout. With <paramref name="code"/>,
    /// the code must match; each of <paramref name="mentions"/> must appear in msg or details.
    /// </summary>
    public CniOutcome AssertError(int? code = null, params string[] mentions)
    {
        if (ExitCode == 0) throw Fail("expected a non-zero exit code");
        if (Json is not JsonObject o) throw Fail("expected an error object on stdout");
        if (o["code"] is null || o["msg"] is null) throw Fail("error object lacks code or msg");
        if (Strict && o["cniVersion"] is null) throw Fail("error object lacks cniVersion");
        if (code is int expected && ErrorCode != expected) throw Fail($"expected error code {expected}, got {ErrorCode}");
        var text = $"{o["msg"]} {o["details"]}";
        foreach (var m in mentions)
            if (!text.Contains(m, StringComparison.OrdinalIgnoreCase))
                throw Fail($"expected the error to mention '{m}'");
        return this;
    }

    public XunitException Fail(string why) => new($"{why}\n{this}");

    public override string ToString() =>
        $"{Binary} {Call.Command} (container {Call.ContainerId}, netns {Call.NetNs}, ifname {Call.IfName}) " +
        $"exit {ExitCode} in {Elapsed.TotalMilliseconds:F0} ms\nstdin: {Call.Stdin}\nstdout: {Stdout}\nstderr: {Stderr}";

    private static JsonNode? TryParse(string s)
    {
        if (string.IsNullOrWhiteSpace(s)) return null;
        try { return JsonNode.Parse(s); }
        catch (JsonException) { return null; }
    }
}

/// <summary>Runs a plugin binary via CliWrap exactly as a runtime does. Never validates the exit code: tests assert.</summary>
public static class PluginRunner
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static readonly string[] CniVariables =
        ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"];

    public static async Task<CniOutcome> Run(string binary, CniCall call, CancellationToken cancel = default)
    {
        var env = new Dictionary<string, string?>(StringComparer.Ordinal)
        {
            ["CNI_COMMAND"] = call.Command,
            ["CNI_CONTAINERID"] = call.ContainerId,
            ["CNI_NETNS"] = call.NetNs,
            ["CNI_IFNAME"] = call.IfName,
            ["CNI_ARGS"] = call.Args,
            ["CNI_PATH"] = call.Path,
            // The test runner's own log settings must not leak into the plugin under test.
            ["PODBRIDGE_LOG_FILE"] = null,
            ["PODBRIDGE_LOG_LEVEL"] = null,
            // Call counters go to this run's temp dir, not the node's /run/podbridge.
            ["PODBRIDGE_METRICS_DIR"] = RunScope.MetricsDir,
        };
        foreach (var (k, v) in call.Extra) env[k] = v;
        foreach (var k in call.Unset) env[k] = null;   // CliWrap removes variables set to null
        foreach (var k in CniVariables.Where(k => !env.ContainsKey(k))) env[k] = null;

        var command = call.NodeNetNs is null
            ? Cli.Wrap(binary)
            : Cli.Wrap("ip").WithArguments(["netns", "exec", call.NodeNetNs, binary]);
        command = command
            .WithEnvironmentVariables(env)
            .WithStandardInputPipe(PipeSource.FromString(call.Stdin))
            .WithValidation(CommandResultValidation.None);

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        cts.CancelAfter(Timeout);
        try
        {
            var r = await command.ExecuteBufferedAsync(cts.Token);
            return new CniOutcome(call, binary, r.ExitCode, r.StandardOutput, r.StandardError, r.RunTime);
        }
        catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
        {
            throw new XunitException($"{binary} {call.Command} did not finish within {Timeout.TotalSeconds}s (container {call.ContainerId})");
        }
    }
}
