using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Operator;

/// <summary>
/// A private node for the operator commands: a netns playing the node (bridge, host veths and sysctls live there),
/// a CNI config dir holding one podbridge conflist, a metrics dir and a log file, all private to one test.
/// <see cref="Cli"/> runs the published binary inside the node netns, as an operator on that node would.
/// </summary>
public sealed class OperatorNode : IDisposable
{
    private OperatorNode(TestNetwork net, string dir, JsonObject plugin)
    {
        Net = net;
        Dir = dir;
        Plugin = plugin;
        Directory.CreateDirectory(ConfDir);
        Directory.CreateDirectory(MetricsDir);
        WriteConflist();
    }

    public TestNetwork Net { get; }
    public string Dir { get; }
    public JsonObject Plugin { get; }
    public string ConfDir => Path.Combine(Dir, "net.d");
    public string MetricsDir => Path.Combine(Dir, "metrics");
    public string LogFile => Path.Combine(Dir, "podbridge.log");
    public string ConflistPath => Path.Combine(ConfDir, "10-test.conflist");

    public static async Task<OperatorNode> Create(Action<JsonObject>? edit = null)
    {
        var net = await TestNetwork.Create(isolatedNode: true);
        try
        {
            var plugin = net.Config(PluginFlavor.PodBridge);
            plugin["logFile"] = "PLACEHOLDER";
            plugin["logFormat"] = "json";
            edit?.Invoke(plugin);
            var node = new OperatorNode(net, RunScope.NewTempDir("operator"), plugin);
            if ((string?)plugin["logFile"] == "PLACEHOLDER") plugin["logFile"] = node.LogFile;
            node.WriteConflist();
            return node;
        }
        catch
        {
            net.Dispose();
            throw;
        }
    }

    /// <summary>The plugin's stdin as a runtime sends it (name and cniVersion injected from the list).</summary>
    public string PluginConfig => Plugin.ToJsonString();

    public void WriteConflist()
    {
        var entry = (JsonObject)Plugin.DeepClone();
        entry.Remove("name");
        entry.Remove("cniVersion");
        var list = new JsonObject
        {
            ["cniVersion"] = (string?)Plugin["cniVersion"],
            ["name"] = (string?)Plugin["name"],
            ["plugins"] = new JsonArray(entry),
        };
        File.WriteAllText(ConflistPath, list.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    public Task<CniOutcome> Call(string verb, TestPod pod) => PluginRunner.Run(Binaries.PodBridge, new CniCall(verb)
    {
        ContainerId = pod.ContainerId,
        NetNs = pod.NetNs.Path,
        IfName = pod.IfName,
        Args = $"IgnoreUnknown=1;K8S_POD_NAMESPACE=team-a;K8S_POD_NAME=web-{pod.NetNs.Name}",
        Stdin = PluginConfig,
        NodeNetNs = Net.NodeNs,
        Extra = new Dictionary<string, string> { ["PODBRIDGE_METRICS_DIR"] = MetricsDir },
    });

    /// <summary>`podbridge ARGS --conf-dir … --bin-dir … --metrics-dir …` inside the node netns.</summary>
    public Task<ShResult> Cli(params string[] args) =>
        Sh.Run("ip", ["netns", "exec", Net.NodeNs!, Binaries.PodBridge, .. args,
            "--conf-dir", ConfDir, "--bin-dir", Binaries.PodBridgeDir, "--metrics-dir", MetricsDir]);

    public void Dispose()
    {
        try { Net.Dispose(); }
        finally { RunScope.TryDeleteDirectory(Dir); }
    }
}
