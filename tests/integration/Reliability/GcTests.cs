using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3, CNI 1.1 GC: the runtime lists the attachments it still uses; every other lease is released (and its
/// host veth removed), silently. Both spellings of the key are accepted; GC below 1.1.0 is refused.
/// </summary>
public sealed class GcTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    [Theory]
    [InlineData("cni.dev/valid-attachments")]
    [InlineData("cni.dev/attachments")]
    public async Task Gc_ReleasesEveryAttachmentNotListed(string key)
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var pods = new[] { owned.Add(await TestPod.Create()), owned.Add(await TestPod.Create()), owned.Add(await TestPod.Create()) };
        var (a, b, c) = (pods[0], pods[1], pods[2]);
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, "1.1.0");
        var results = new List<JsonObject>();
        foreach (var p in pods) results.Add((await cni.Add(p, conf)).AssertSuccess().Result);
        var leases = await LeaseList.Of(net);
        Assert.Equal(3, leases.Count);

        CniCall Gc(string version, params TestPod[] keep)
        {
            var gc = net.Config(Flavor, version);
            gc[key] = new JsonArray(keep.Select(p => (JsonNode)new JsonObject { ["containerID"] = p.ContainerId, ["ifname"] = p.IfName }).ToArray());
            return new CniCall("GC") { Stdin = gc.ToJsonString() };
        }

        // Below 1.1.0 there is no GC: refused, and nothing released.
        (await cni.Invoke(Gc("1.0.0", a))).AssertError(1);
        Assert.Equal(leases.OrderBy(l => l.Ip), (await LeaseList.Of(net)).OrderBy(l => l.Ip));

        (await cni.Invoke(Gc("1.1.0", a))).AssertSilentSuccess();
        var kept = Assert.Single(await LeaseList.Of(net));
        Assert.Equal((a.ContainerId, a.IfName, Assert.Single(Must.ResultAddresses(results[0]))), (kept.ContainerId, kept.IfName, kept.Ip));
        foreach (var i in new[] { 1, 2 })
            Assert.True(await Kernel.Eventually(async () => !await Kernel.LinkExists(net.NodeNs, Must.HostVethOf(results[i]))),
                $"GC left the host veth of released {pods[i]}");
        (await cni.Check(a, conf, results[0])).AssertSilentSuccess();

        // An empty list means the runtime uses nothing on this network.
        (await cni.Invoke(Gc("1.1.0"))).AssertSilentSuccess();
        Assert.Empty(await LeaseList.Of(net));
        Assert.True(await Kernel.Eventually(async () => (await KernelView.StrayNodeLinks(net)).Count == 0), "GC with an empty list left host veths");

        // The runtime's DELs for the collected attachments still succeed.
        foreach (var p in pods) (await cni.Del(p, conf)).AssertSilentSuccess();
    }
}
