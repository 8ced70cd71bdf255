using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The shared scenarios on the published podbridge binary, plus what podbridge promises beyond the reference:
/// full rollback of a failed ADD, deterministic host veth names, bridge-nf-call-iptables, 1.1 verbs.
/// </summary>
public sealed class PodBridgeTests : BridgeScenarios
{
    protected override PluginFlavor Flavor => PluginFlavor.PodBridge;

    [Fact]
    public async Task HostVethName_IsDeterministicPerContainerAndIfName()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        using var pod2 = await TestPod.Create("net1");
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);

        var first = (string)(await AddOk(cni, pod, conf))["interfaces"]![1]!["name"]!;
        Assert.Matches(Expect.PodBridgeHostVeth(), first);
        (await cni.Del(pod, conf)).AssertSilentSuccess();
        var second = (string)(await AddOk(cni, pod, conf))["interfaces"]![1]!["name"]!;
        Assert.Equal(first, second);

        var other = (string)(await AddOk(cni, pod2, conf))["interfaces"]![1]!["name"]!;
        Assert.NotEqual(first, other);
    }

    [Fact]
    public async Task Add_SetsBridgeNfCallIptables_OnTheNode()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        // br_netfilter's sysctls are per netns: 0 here, set by the plugin, nothing changes on this machine.
        await Kernel.SetSysctl(net.NodeNs!, "net.bridge.bridge-nf-call-iptables", "0");
        var cni = new CniDriver(Flavor, net);
        await AddOk(cni, pod, net.Config(Flavor));
        Assert.Equal("1", await Kernel.Sysctl(net.NodeNs, "net.bridge.bridge-nf-call-iptables"));
    }

    [Fact]
    public async Task Result110_CarriesInterfaceMtu()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, "1.1.0");
        conf["mtu"] = 1450;
        var result = await AddOk(cni, pod, conf);
        await Expect.ResultMatchesKernel(result, "1.1.0", net, pod, Flavor);
        foreach (var i in result["interfaces"]!.AsArray())
            Assert.Equal(1450, (int)i!["mtu"]!);
    }

    /// <summary>CNI.md 2.13: IPAM ran first, then the pod iface turned out to exist; the lease must be given back.</summary>
    [Fact]
    public async Task Add_WhenIfNameExistsInPod_Fails101_AndReleasesTheLease()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = OneAddressConfig(net);
        // Any kind will do (this kernel has no dummy driver); a bridge cannot be mistaken for the plugin's veth.
        (await Sh.Ip(a.NetNs.Name, "link", "add", a.IfName, "type", "bridge")).EnsureOk();

        (await cni.Add(a, conf)).AssertError(101, a.IfName);
        var stillThere = await Kernel.Link(a.NetNs.Name, a.IfName);
        Assert.True(stillThere is { Kind: "bridge" }, "rollback must not delete the interface that was already there");
        Assert.Empty(await Kernel.BridgePorts(net.NodeNs, net.Bridge));
        Assert.Empty(await IpamState.Leases(Flavor.IpamType, net));

        Assert.Equal(net.V4(10), FirstV4(await AddOk(cni, b, conf)));
    }

    [Fact]
    public async Task Add_WhenBridgeNameIsNotABridge_Fails7_AndReleasesTheLease()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = OneAddressConfig(net);
        // A veth squatting on the bridge name (its peer carries the run prefix too, so cleanup finds both).
        (await Sh.Ip(null, "link", "add", net.Bridge, "type", "veth", "peer", "name", net.Bridge + "p")).EnsureOk();

        (await cni.Add(a, conf)).AssertError(7, net.Bridge);
        Assert.False(await Kernel.LinkExists(a.NetNs.Name, a.IfName));
        Assert.Equal("veth", (await Kernel.Link(null, net.Bridge))?.Kind);
        Assert.Empty(await IpamState.Leases(Flavor.IpamType, net));

        (await Sh.Ip(null, "link", "delete", net.Bridge)).EnsureOk();
        Assert.Equal(net.V4(10), FirstV4(await AddOk(cni, a, conf)));
    }

    /// <summary>
    /// A pod whose netns vanished without a DEL (crashed runtime) holds a lease nobody will release; when the range
    /// runs out, podbridge-ipam reclaims it (host-local never does).
    /// </summary>
    [Fact]
    public async Task LeaseOfAVanishedNetNs_IsReclaimedWhenTheRangeIsFull()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = OneAddressConfig(net);
        await AddOk(cni, a, conf);
        await a.NetNs.Delete();

        Assert.Equal(net.V4(10), FirstV4(await AddOk(cni, b, conf)));
        Assert.Equal(new LeaseRecord(net.V4(10), b.ContainerId, b.IfName), Assert.Single(await IpamState.Leases(Flavor.IpamType, net)));
    }

    [Fact]
    public async Task Gc_ReleasesAttachmentsTheRuntimeNoLongerLists()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        using var c = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, "1.1.0");
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(11))));
        var ra = await AddOk(cni, a, conf);
        var rb = await AddOk(cni, b, conf);
        var hostB = (string)rb["interfaces"]![1]!["name"]!;

        var gc = (JsonObject)conf.DeepClone();
        gc["cni.dev/valid-attachments"] = new JsonArray(new JsonObject { ["containerID"] = a.ContainerId, ["ifname"] = a.IfName });
        (await cni.Invoke(new CniCall("GC") { Stdin = gc.ToJsonString() })).AssertSilentSuccess();

        Assert.True(await Kernel.Eventually(async () => !await Kernel.LinkExists(null, hostB)), $"GC left {hostB} of the released attachment");
        (await cni.Check(a, conf, ra)).AssertSilentSuccess();
        Assert.Equal(FirstV4(rb), FirstV4(await AddOk(cni, c, conf)));
    }

    [Fact]
    public async Task Status_Succeeds_ThenReports50WhenThePoolIsExhausted()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = OneAddressConfig(net, "1.1.0");
        var status = new CniCall("STATUS") { Stdin = conf.ToJsonString() };

        (await cni.Invoke(status)).AssertSilentSuccess();
        await AddOk(cni, a, conf);
        (await cni.Invoke(status)).AssertError(50);
    }
}
