using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using PodBridge.IntegrationTests.Reliability;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests;

/// <summary>
/// vlan / vlanTrunk / preserveDefaultVlan on the published binary. They need bridge VLAN filtering
/// (CONFIG_BRIDGE_VLAN_FILTERING), which some kernels (this CI machine's) lack: each test first probes the kernel in a
/// namespace of its own. Without the feature, ADD must fail with code 108 naming it and leave nothing behind; with
/// it, the port VLANs are checked in the kernel and pods on different VLANs cannot reach each other.
/// </summary>
public sealed class VlanTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    /// <summary>Can this kernel create a VLAN-filtering bridge? Probed with `ip` in a throwaway namespace.</summary>
    private static async Task<bool> KernelFiltersVlans()
    {
        using var probe = await TestNetNs.Create();
        return (await Sh.Ip(probe.Name, "link", "add", RunScope.NewName(), "type", "bridge", "vlan_filtering", "1")).Ok;
    }

    private static JsonObject VlanConfig(TestNetwork net, int vlan)
    {
        var conf = net.Config(Flavor);
        conf["vlan"] = vlan;
        return conf;
    }

    [Theory]
    [InlineData("""{"vlan":10}""")]
    [InlineData("""{"vlanTrunk":[{"id":10},{"minID":20,"maxID":30}]}""")]
    [InlineData("""{"vlan":10,"isGateway":true,"preserveDefaultVlan":false}""")]
    public async Task WithoutBridgeVlanFiltering_AddFails108NamingIt_AndLeavesNothing(string keys)
    {
        if (await KernelFiltersVlans())
        {
            output.WriteLine("skipped: this kernel has bridge VLAN filtering, so the missing-feature error cannot be provoked");
            return;
        }
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        foreach (var (k, v) in JsonNode.Parse(keys)!.AsObject()) conf[k] = v!.DeepClone();

        (await cni.Add(pod, conf)).AssertError(108, "CONFIG_BRIDGE_VLAN_FILTERING", "vlan");
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName), "the refused ADD left the pod interface");
        Assert.False(await Kernel.LinkExists(net.NodeNs, net.Bridge), "the refused ADD left a bridge it created");
        Assert.Empty(await LeaseList.Of(net));
        Assert.Empty(await KernelView.StrayNodeLinks(net));
        (await cni.Del(pod, conf)).AssertSilentSuccess();

        // An existing bridge is left as it was (no half-applied VLAN settings), and ADD still fails the same way.
        (await Sh.Ip(net.NodeNs, "link", "add", net.Bridge, "type", "bridge")).EnsureOk();
        (await cni.Add(pod, conf)).AssertError(108, "CONFIG_BRIDGE_VLAN_FILTERING");
        Assert.Empty(await Kernel.Links(net.NodeNs, net.Bridge));
        Assert.Empty(await LeaseList.Of(net));
    }

    [Fact]
    public async Task AccessVlans_IsolatePods_CheckVerifiesThePortVlans()
    {
        if (!await KernelFiltersVlans())
        {
            output.WriteLine("skipped: this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING); " +
                             "WithoutBridgeVlanFiltering_AddFails108NamingIt_AndLeavesNothing covers it instead");
            return;
        }
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        using var c = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var (v10, v20) = (VlanConfig(net, 10), VlanConfig(net, 20));
        v10.Remove("isGateway");
        v20.Remove("isGateway");
        var ra = (await cni.Add(a, v10)).AssertSuccess().Result;
        var rb = (await cni.Add(b, v10)).AssertSuccess().Result;
        var rc = (await cni.Add(c, v20)).AssertSuccess().Result;

        var vlans = (await Sh.Run("bridge", "-n", net.NodeNs!, "-j", "vlan", "show")).EnsureOk().Stdout;
        output.WriteLine(vlans);
        Assert.True((await Kernel.Ping(a.NetNs.Name, Kernel.AddressOf((string)rb["ips"]![0]!["address"]!))).Ok, "same VLAN must reach");
        Assert.False((await Kernel.Ping(a.NetNs.Name, Kernel.AddressOf((string)rc["ips"]![0]!["address"]!), attempts: 2)).Ok,
            "a pod on VLAN 10 reached one on VLAN 20");
        (await cni.Check(a, v10, ra)).AssertSilentSuccess();
        (await cni.Check(c, v10, rc)).AssertError(106, "VLAN 10");
        foreach (var (p, conf, r) in new[] { (a, v10, ra), (b, v10, rb), (c, v20, rc) })
            (await cni.Del(p, conf, r)).AssertSilentSuccess();
    }
}
