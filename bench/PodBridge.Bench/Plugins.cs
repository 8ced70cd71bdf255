using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace PodBridge.Bench;

/// <summary>One side of the comparison: which binary runs and which IPAM it uses.</summary>
internal sealed record PluginUnderTest(
    string Label,
    string Executable,
    string CniPath,
    string Type,
    string IpamType,
    IReadOnlyList<string> BinariesForThisConfig)
{
    public const string PodbridgeLabel = "podbridge";
    public const string WarmLabel = "podbridge warm";
    public const string ReferenceLabel = "reference";
    public const string LoggedLabel = "podbridge json log";

    /// <summary>Set on the side that also writes a JSON log file (logFile + logFormat json, level info).</summary>
    public string? LogFile { get; init; }

    /// <summary>The same binary writing an info-level JSON log line per call (what an operator turns on).</summary>
    public static PluginUnderTest PodbridgeLogged(string binDir, string logFile) =>
        Podbridge(binDir) with { Label = LoggedLabel, LogFile = logFile };

    /// <summary>The same binary, its network's data dir served by `podbridge-ipam serve` (the warm IPAM).</summary>
    public static PluginUnderTest PodbridgeWarm(string binDir) => Podbridge(binDir) with { Label = WarmLabel };

    public static PluginUnderTest Podbridge(string binDir) => new(
        PodbridgeLabel,
        Path.Combine(binDir, "podbridge"),
        binDir,
        "podbridge",
        "podbridge-ipam",
        [Path.Combine(binDir, "podbridge")]);

    public static PluginUnderTest Reference(string cniDir) => new(
        ReferenceLabel,
        Path.Combine(cniDir, "bridge"),
        cniDir,
        "bridge",
        "host-local",
        [Path.Combine(cniDir, "bridge"), Path.Combine(cniDir, "host-local")]);
}

/// <summary>
/// A network configuration. The two plugins get identical settings except for the plugin type,
/// the bridge name, the subnet and the data dir (separate so that neither sees the other's state).
/// </summary>
internal sealed record BenchNetwork(PluginUnderTest Plugin, string Name, string Bridge, string Subnet, string DataDir)
{
    public IPAddress SubnetBase => IPNetwork.Parse(Subnet).BaseAddress;

    public int PrefixLength => IPNetwork.Parse(Subnet).PrefixLength;

    /// <summary>The address at <paramref name="offset"/> from the network address (IPv4).</summary>
    public IPAddress AddressAt(long offset)
    {
        var b = SubnetBase.GetAddressBytes();
        uint v = (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]) + (uint)offset;
        return new IPAddress([(byte)(v >> 24), (byte)(v >> 16), (byte)(v >> 8), (byte)v]);
    }

    public long OffsetOf(IPAddress address)
    {
        var a = address.GetAddressBytes();
        var b = SubnetBase.GetAddressBytes();
        uint av = (uint)(a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3]);
        uint bv = (uint)(b[0] << 24 | b[1] << 16 | b[2] << 8 | b[3]);
        return (long)av - bv;
    }

    public JsonObject Config(JsonNode? prevResult = null)
    {
        var conf = new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = Name,
            ["type"] = Plugin.Type,
            ["bridge"] = Bridge,
            ["isGateway"] = true,
            ["ipMasq"] = false,
            ["ipam"] = new JsonObject
            {
                ["type"] = Plugin.IpamType,
                ["ranges"] = new JsonArray(new JsonArray(new JsonObject { ["subnet"] = Subnet })),
                ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }),
                ["dataDir"] = DataDir,
            },
        };
        if (Plugin.LogFile is not null)
        {
            conf["logFile"] = Plugin.LogFile;
            conf["logFormat"] = "json";
            conf["logLevel"] = "info";
        }
        if (prevResult is not null)
            conf["prevResult"] = prevResult.DeepClone();
        return conf;
    }
}

/// <summary>A pod sandbox: its own netns, a containerd-style container id, and the ADD result once added.</summary>
internal sealed class Pod(BenchNetwork network, string netnsPath, int index)
{
    public BenchNetwork Network { get; } = network;
    public string NetNsPath { get; } = netnsPath;
    public int Index { get; } = index;
    public string ContainerId { get; private set; } = NewContainerId();
    public JsonNode? Result { get; set; }

    /// <summary>Each phase reuses the namespace with a fresh container id, as a new pod would.</summary>
    public void Renew()
    {
        ContainerId = NewContainerId();
        Result = null;
    }

    public IPAddress? Address
    {
        get
        {
            var cidr = Result?["ips"]?[0]?["address"]?.GetValue<string>();
            return cidr is null ? null : IPAddress.Parse(cidr.Split('/')[0]);
        }
    }

    private static string NewContainerId() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
}

internal enum Verb { Add, Check, Del, Version }

internal sealed class PluginFailure(string message) : Exception(message);

/// <summary>Invokes a plugin for one pod the way libcni does: env vars, config (+prevResult) on stdin.</summary>
internal static class Cni
{
    public const string IfName = "eth0";

    public static Invocation Invoke(Pod pod, Verb verb)
    {
        if (Cancellation.Requested)
            throw new OperationCanceledException();
        var plugin = pod.Network.Plugin;
        // libcni passes the cached ADD result as prevResult to CHECK and DEL.
        var stdin = Encoding.UTF8.GetBytes(pod.Network.Config(verb == Verb.Add ? null : pod.Result).ToJsonString());
        string command = verb switch { Verb.Add => "ADD", Verb.Check => "CHECK", Verb.Version => "VERSION", _ => "DEL" };
        string[] env =
        [
            $"CNI_COMMAND={command}",
            $"CNI_CONTAINERID={pod.ContainerId}",
            $"CNI_NETNS={pod.NetNsPath}",
            $"CNI_IFNAME={IfName}",
            $"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-{pod.Index};K8S_POD_INFRA_CONTAINER_ID={pod.ContainerId}",
            $"CNI_PATH={plugin.CniPath}",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ];
        var result = Spawner.Run(plugin.Executable, [plugin.Executable], env, stdin);
        if (!result.Succeeded)
            throw new PluginFailure(
                $"{plugin.Label} {command} for pod {pod.Index} ({pod.NetNsPath}) exited {result.ExitCode}\n" +
                $"  stdout: {result.Stdout.Trim()}\n  stderr: {result.Stderr.Trim()}");
        if (verb == Verb.Add)
        {
            try
            {
                pod.Result = JsonNode.Parse(result.Stdout) ?? throw new FormatException("null result");
                _ = pod.Address ?? throw new FormatException("no ips[0].address");
            }
            catch (Exception e) when (e is FormatException or System.Text.Json.JsonException or InvalidOperationException)
            {
                throw new PluginFailure($"{plugin.Label} ADD for pod {pod.Index} printed an unusable result ({e.Message}): {result.Stdout.Trim()}");
            }
        }
        else if (verb == Verb.Version)
        {
            if (!result.Stdout.Contains("supportedVersions", StringComparison.Ordinal))
                throw new PluginFailure($"{plugin.Label} VERSION printed no version document: {result.Stdout.Trim()}");
        }
        else if (result.Stdout.Trim().Length > 0)
        {
            throw new PluginFailure($"{plugin.Label} {command} for pod {pod.Index} succeeded but printed to stdout: {result.Stdout.Trim()}");
        }
        return result;
    }
}

/// <summary>Ctrl-C / SIGTERM stop the run between invocations; cleanup then runs in the normal finally.</summary>
internal static class Cancellation
{
    private static volatile bool s_requested;

    public static bool Requested => s_requested;

    public static void Request() => s_requested = true;
}
