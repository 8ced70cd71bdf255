using System.Text.Json.Nodes;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>A pod sandbox: its own netns, a container id and the interface name the runtime asks for.</summary>
public sealed class TestPod : IDisposable
{
    private TestPod(TestNetNs ns, string containerId, string ifName)
    {
        NetNs = ns;
        ContainerId = containerId;
        IfName = ifName;
    }

    public TestNetNs NetNs { get; }
    public string ContainerId { get; }
    public string IfName { get; }

    public static async Task<TestPod> Create(string ifName = "eth0") =>
        new(await TestNetNs.Create(), RunScope.NewContainerId(), ifName);

    public static async Task<TestPod[]> CreateMany(int count, string ifName = "eth0") =>
        (await TestNetNs.CreateMany(count)).Select(ns => new TestPod(ns, RunScope.NewContainerId(), ifName)).ToArray();

    public void Dispose() => NetNs.Dispose();

    public override string ToString() => $"{ContainerId}/{IfName} in {NetNs.Name}";
}

/// <summary>
/// Drives one flavor's bridge plugin on one test network the way libcni does: CNI_PATH = the flavor's plugin dir,
/// prevResult injected for CHECK/DEL, the node netns honoured.
/// </summary>
public sealed class CniDriver(PluginFlavor flavor, TestNetwork network)
{
    public PluginFlavor Flavor => flavor;
    public TestNetwork Network => network;

    public Task<CniOutcome> Add(TestPod pod, JsonObject conf, string args = "") =>
        Invoke(Call("ADD", pod, conf, null) with { Args = args });

    public Task<CniOutcome> Check(TestPod pod, JsonObject conf, JsonObject prevResult) =>
        Invoke(Call("CHECK", pod, conf, prevResult));

    public Task<CniOutcome> Del(TestPod pod, JsonObject conf, JsonObject? prevResult = null, string? netns = null) =>
        Invoke(Call("DEL", pod, conf, prevResult) with { NetNs = netns ?? pod.NetNs.Path });

    public Task<CniOutcome> Version(string stdin = """{"cniVersion":"1.0.0"}""") =>
        // libcni's GetVersionInfo: dummy netns/ifname/path, empty container id.
        Invoke(new CniCall("VERSION") { NetNs = "dummy", IfName = "dummy", Path = "dummy", Stdin = stdin });

    /// <summary>Runs the flavor's bridge binary; CNI_PATH defaults to the flavor's plugin directory.</summary>
    public async Task<CniOutcome> Invoke(CniCall call) => await PluginRunner.Run(flavor.BridgeBinary(), call with
    {
        Path = call.Path.Length > 0 ? call.Path : flavor.CniPath(),
        NodeNetNs = call.NodeNetNs ?? network.NodeNs,
    }) with { Strict = flavor.IsPodBridge };

    public CniCall Call(string command, TestPod pod, JsonObject conf, JsonObject? prevResult) => new(command)
    {
        ContainerId = pod.ContainerId,
        NetNs = pod.NetNs.Path,
        IfName = pod.IfName,
        Stdin = WithPrevResult(conf, prevResult),
    };

    /// <summary>What libcni sends for CHECK/DEL: the same config plus the cached ADD result.</summary>
    public static string WithPrevResult(JsonObject conf, JsonObject? prevResult)
    {
        if (prevResult is null) return conf.ToJsonString();
        var copy = (JsonObject)conf.DeepClone();
        copy["prevResult"] = prevResult.DeepClone();
        return copy.ToJsonString();
    }
}
