using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// macspoofchk on the published podbridge binary: frames from a pod's host veth with a source MAC other than the
/// pod's are dropped in table bridge podbridge. Each test runs the plugin in a private node netns, so the nftables
/// ruleset of this machine is never touched.
/// </summary>
public sealed class MacSpoofChkTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    private static JsonObject SpoofConfig(TestNetwork net, string version = "1.0.0")
    {
        var conf = net.Config(Flavor, version);
        conf["macspoofchk"] = true;
        return conf;
    }

    private static async Task<string> Table(TestNetwork net)
    {
        var r = await net.Node!.Exec("nft", "list", "table", "bridge", "podbridge");
        return r.Ok ? r.Stdout : "";
    }

    private static string HostVeth(JsonObject result) => (string)result["interfaces"]![1]!["name"]!;

    [Fact]
    public async Task SpoofedSourceMac_IsDropped_OwnMacPasses_CheckVerifies_DelRemoves()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = SpoofConfig(net);
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var veth = HostVeth(result);
        var mac = (string)result["interfaces"]![2]!["mac"]!;
        var table = await Table(net);
        Assert.Contains($"\"{veth}\"", table);
        Assert.Contains($"ether saddr != {mac}", table);

        Assert.True((await Kernel.Ping(pod.NetNs.Name, net.Gateway4)).Ok, "the pod's own MAC must pass");

        // Spoof: the pod changes its own source MAC; the node's neighbour entry is flushed so it has to ask again.
        (await Sh.Ip(pod.NetNs.Name, "link", "set", pod.IfName, "address", "02:00:00:5b:00:01")).EnsureOk();
        await Sh.Ip(net.NodeNs, "neigh", "flush", "dev", net.Bridge);
        Assert.False((await Kernel.Ping(pod.NetNs.Name, net.Gateway4, attempts: 2)).Ok, "a spoofed source MAC must be dropped");
        Assert.Matches(@"counter packets [1-9]", await Table(net));
        (await cni.Check(pod, conf, result)).AssertError(106); // the pod's MAC is no longer the one in prevResult

        (await Sh.Ip(pod.NetNs.Name, "link", "set", pod.IfName, "address", mac)).EnsureOk();
        Assert.True((await Kernel.Ping(pod.NetNs.Name, net.Gateway4, attempts: 5)).Ok, "back on its own MAC the pod must pass again");
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();

        (await net.Node!.Exec("nft", "delete", "element", "bridge", "podbridge", "spoofchk_ports", $"{{ \"{veth}\" }}")).EnsureOk();
        (await cni.Check(pod, conf, result)).AssertError(106, "macspoofchk", veth);

        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        Assert.DoesNotContain(veth, await Table(net));
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
    }

    [Fact]
    public async Task DelWithoutNetnsOrPrevResult_AndGc_RemoveThePortCheck()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        using var c = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = SpoofConfig(net, "1.1.0");
        var (ra, rb, rc) = ((await cni.Add(a, conf)).AssertSuccess().Result, (await cni.Add(b, conf)).AssertSuccess().Result,
            (await cni.Add(c, conf)).AssertSuccess().Result);

        await a.NetNs.Delete();
        (await cni.Del(a, conf, netns: "")).AssertSilentSuccess();
        var table = await Table(net);
        Assert.DoesNotContain(HostVeth(ra), table);
        Assert.Contains(HostVeth(rb), table);

        var gc = SpoofConfig(net, "1.1.0");
        gc["cni.dev/valid-attachments"] = new JsonArray(new JsonObject { ["containerID"] = c.ContainerId, ["ifname"] = c.IfName });
        (await cni.Invoke(new CniCall("GC") { Stdin = gc.ToJsonString() })).AssertSilentSuccess();
        table = await Table(net);
        Assert.DoesNotContain(HostVeth(rb), table);
        Assert.Contains(HostVeth(rc), table);
        (await cni.Del(c, conf, rc)).AssertSilentSuccess();
        Assert.DoesNotContain(HostVeth(rc), await Table(net));
    }

    [Fact]
    public async Task FailedAdd_AfterTheSpoofCheck_LeavesNoPortCheck()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = SpoofConfig(net);
        // The gateway step fails after the spoof check is in place: another address of the subnet is on the bridge.
        (await Sh.Ip(net.NodeNs, "link", "add", net.Bridge, "type", "bridge")).EnsureOk();
        (await Sh.Ip(net.NodeNs, "addr", "add", $"{net.V4(200)}/24", "dev", net.Bridge)).EnsureOk();
        (await cni.Add(pod, conf)).AssertError(7, net.V4(200));
        var table = await Table(net);
        Assert.True(table.Contains("spoofchk_ports"), $"the ADD never reached the spoof check, so this test proves nothing\n{table}");
        Assert.DoesNotContain("spoof_veth", table);
        Assert.DoesNotContain("jump", table.Replace("vmap", ""));
    }
}
