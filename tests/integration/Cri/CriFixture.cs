using System.Text.Json.Nodes;
using PodBridge.Cri;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Cri;

/// <summary>
/// One private containerd for the CRI scenarios, with one runtime handler per podbridge network:
/// <list type="bullet">
/// <item><c>single</c>: IPv4 /24, portmap chained after podbridge (hostPort);</item>
/// <item><c>dual</c>: an IPv4 and an IPv6 range set;</item>
/// <item><c>pool3</c>: three addresses (.10–.12);</item>
/// <item><c>pool1</c>: one address (.10), to see an address come back.</item>
/// </list>
/// containerd adds its own loopback network to every sandbox, as it does for kubelet.
/// </summary>
public sealed class CriFixture : IAsyncLifetime
{
    /// <summary>The CNI bin dir containerd gets: our two plugins, the reference loopback and portmap.</summary>
    public static Dictionary<string, string> PluginBinaries() => new()
    {
        ["podbridge"] = Binaries.PodBridge,
        ["podbridge-ipam"] = Binaries.PodBridgeIpam,
        ["loopback"] = Binaries.Require(Binaries.ReferenceDir, "loopback"),
        ["portmap"] = Binaries.Require(Binaries.ReferenceDir, "portmap"),
    };

    public const string Single = "single", Dual = "dual", Pool3 = "pool3", Pool1 = "pool1";

    private readonly List<TestNetwork> _networks = [];

    public Containerd Containerd { get; private set; } = null!;
    public Dictionary<string, TestNetwork> Networks { get; } = [];
    public string LogFile { get; private set; } = null!;
    private string _logDir = null!;

    public async Task InitializeAsync()
    {
        RunScope.EnsureInitialized();
        _logDir = RunScope.NewTempDir("crilog");
        LogFile = Path.Combine(_logDir, "podbridge.log");
        try
        {
            var cri = new List<CriNetwork>();
            foreach (var handler in new[] { Single, Dual, Pool3, Pool1 })
            {
                var net = await TestNetwork.Create();
                _networks.Add(net);
                Networks[handler] = net;
                cri.Add(new CriNetwork(handler, Conflist(handler, net).ToJsonString()));
            }
            var bins = PluginBinaries();
            // Under /tmp with the run prefix and the "-containerd" tag: RunScope's sweep finds it after a crash.
            var dir = RunScope.NewTempDir("containerd");
            Containerd = await PodBridge.Cri.Containerd.Start(new ContainerdOptions(dir, bins, cri));
        }
        catch
        {
            await DisposeAsync();
            throw;
        }
    }

    private JsonObject Conflist(string handler, TestNetwork net)
    {
        var bridge = net.Config(PluginFlavor.PodBridge, dualStack: handler == Dual);
        bridge.Remove("cniVersion");
        bridge.Remove("name");
        bridge["logFile"] = LogFile;
        // A pod network: pods route everything through the bridge (portmap's replies and pod-to-node traffic too).
        bridge["isDefaultGateway"] = true;
        if (handler is Pool3 or Pool1)
            bridge["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(handler == Pool3 ? 12 : 10))));
        var plugins = new JsonArray(bridge);
        if (handler == Single)
            plugins.Add((JsonNode)new JsonObject { ["type"] = "portmap", ["capabilities"] = new JsonObject { ["portMappings"] = true } });
        return new JsonObject { ["cniVersion"] = "1.0.0", ["name"] = net.Name, ["plugins"] = plugins };
    }

    /// <summary>podbridge's log lines for one verb and sandbox ("... DEL &lt;first 12 of id&gt;/eth0 ...").</summary>
    public IReadOnlyList<string> LogLines(string verb, string sandboxId) =>
        File.Exists(LogFile)
            ? File.ReadLines(LogFile).Where(l => l.Contains($" {verb} {sandboxId[..Math.Min(12, sandboxId.Length)]}/", StringComparison.Ordinal)).ToList()
            : [];

    public async Task DisposeAsync()
    {
        try
        {
            if (Containerd is not null) await Containerd.DisposeAsync();
        }
        finally
        {
            foreach (var net in _networks) net.Dispose();
            RunScope.TryDeleteDirectory(_logDir);
        }
        // The teardown's own test: portmap's shared host chains, and the ip6 nat table its IPv6 DEL creates, are gone
        // when this process created them (left alone when they existed before, or another containerd still runs).
        if (Containerd is not null && Containerd.HostNatLeftOver.Count > 0)
            throw new InvalidOperationException($"the CRI tests left host NAT state behind: {string.Join(", ", Containerd.HostNatLeftOver)}");
    }
}
