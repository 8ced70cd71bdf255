using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The reference bridge keys beyond the basics (portIsolation, disableContainerInterface, hairpinMode, promiscMode),
/// on the published podbridge binary, checked in the kernel. Each test runs the plugin in a private node netns.
/// </summary>
public sealed class BridgeKeyTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    private static async Task<JsonObject> AddOk(CniDriver cni, TestPod pod, JsonObject conf) =>
        (await cni.Add(pod, conf)).AssertSuccess().Result;

    private static string V4(JsonObject result) => Kernel.AddressOf((string)result["ips"]![0]!["address"]!);

    private static async Task<bool> Isolated(TestNetwork net, string port)
    {
        var r = (await Sh.Run("ip", "-n", net.NodeNs!, "-j", "-d", "link", "show", port)).EnsureOk();
        var slave = JsonNode.Parse(r.Stdout)![0]!["linkinfo"]!["info_slave_data"]!;
        return (bool)slave["isolated"]!;
    }

    [Fact]
    public async Task PortIsolation_IsolatedPodsCannotPingEachOther_ButReachTheGatewayAndOpenPods()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        using var open = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var isolated = net.Config(Flavor);
        isolated["portIsolation"] = true;
        var plain = net.Config(Flavor);

        var ra = await AddOk(cni, a, isolated);
        var rb = await AddOk(cni, b, isolated);
        var ro = await AddOk(cni, open, plain);
        Assert.True(await Isolated(net, (string)ra["interfaces"]![1]!["name"]!));
        Assert.False(await Isolated(net, (string)ro["interfaces"]![1]!["name"]!));

        Assert.True((await Kernel.Ping(a.NetNs.Name, net.Gateway4)).Ok, "an isolated pod must reach the gateway on the bridge");
        Assert.True((await Kernel.Ping(a.NetNs.Name, V4(ro))).Ok, "an isolated pod must reach a non-isolated port");
        Assert.False((await Kernel.Ping(a.NetNs.Name, V4(rb), attempts: 2)).Ok, "two isolated ports must not reach each other");
        Assert.False((await Kernel.Ping(b.NetNs.Name, V4(ra), attempts: 2)).Ok, "two isolated ports must not reach each other");

        (await cni.Check(a, isolated, ra)).AssertSilentSuccess();
        // CHECK holds the port to the config both ways.
        (await cni.Check(open, isolated, ro)).AssertError(106, "isolated");
        (await Sh.Ip(net.NodeNs, "link", "set", "dev", (string)ra["interfaces"]![1]!["name"]!, "type", "bridge_slave", "isolated", "off")).EnsureOk();
        (await cni.Check(a, isolated, ra)).AssertError(106, "portIsolation");

        foreach (var (pod, conf, result) in new[] { (a, isolated, ra), (b, isolated, rb), (open, plain, ro) })
            (await cni.Del(pod, conf, result)).AssertSilentSuccess();
    }

    [Fact]
    public async Task DisableContainerInterface_LeavesThePodInterfaceDownWithItsAddresses_CheckPasses()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        conf["disableContainerInterface"] = true;
        conf["isDefaultGateway"] = true;

        var result = await AddOk(cni, pod, conf);
        var link = await Kernel.Link(pod.NetNs.Name, pod.IfName);
        Assert.NotNull(link);
        Assert.False(link.IsUp, "disableContainerInterface: the pod interface must stay down");
        Assert.Contains(await Kernel.GlobalAddresses(pod.NetNs.Name, pod.IfName), a => a.Local == V4(result));
        // A down link has no connected route: no route can go through it, and none is reported.
        Assert.Null(result["routes"]);
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();

        // The pod brings it up itself; CHECK is still fine and traffic flows.
        (await Sh.Ip(pod.NetNs.Name, "link", "set", pod.IfName, "up")).EnsureOk();
        Assert.True((await Kernel.Ping(pod.NetNs.Name, net.Gateway4)).Ok);
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName));
    }

    [Fact]
    public async Task DisableContainerInterface_WithoutIpam_IsAPlainL2PortLeftDown()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        conf.Remove("ipam");
        conf.Remove("isGateway");
        conf["disableContainerInterface"] = true;

        var result = await AddOk(cni, pod, conf);
        Assert.False((await Kernel.Link(pod.NetNs.Name, pod.IfName))!.IsUp);
        Assert.Single(await Kernel.BridgePorts(net.NodeNs, net.Bridge));
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
    }

    [Fact]
    public async Task HairpinAndPromisc_AreVerifiedByCheck()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var hairpin = net.Config(Flavor);
        hairpin["hairpinMode"] = true;
        var promisc = net.Config(Flavor);
        promisc["promiscMode"] = true;

        var ra = await AddOk(cni, a, hairpin);
        var port = (string)ra["interfaces"]![1]!["name"]!;
        Assert.True((await Kernel.BridgePorts(net.NodeNs, net.Bridge)).Single(p => p.Name == port).Hairpin);
        (await cni.Check(a, hairpin, ra)).AssertSilentSuccess();
        (await Sh.Ip(net.NodeNs, "link", "set", "dev", port, "type", "bridge_slave", "hairpin", "off")).EnsureOk();
        (await cni.Check(a, hairpin, ra)).AssertError(106, "hairpin");

        var rb = await AddOk(cni, b, promisc);
        Assert.Contains("PROMISC", (await Kernel.Link(net.NodeNs, net.Bridge))!.Flags);
        (await cni.Check(b, promisc, rb)).AssertSilentSuccess();
        (await Sh.Ip(net.NodeNs, "link", "set", "dev", net.Bridge, "promisc", "off")).EnsureOk();
        (await cni.Check(b, promisc, rb)).AssertError(106, "promiscMode");

        (await cni.Del(a, hairpin, ra)).AssertSilentSuccess();
        (await cni.Del(b, promisc, rb)).AssertSilentSuccess();
    }
}
