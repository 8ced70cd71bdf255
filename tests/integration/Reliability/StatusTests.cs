using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3, CNI 1.1 STATUS: says whether the next ADD can be served. A full pool is code 50 with the free count;
/// a released or reclaimable address makes it 0 again.
/// </summary>
public sealed class StatusTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    [Fact]
    public async Task Status_OkOnAFreshPool_50WithTheFreeCountWhenFull_OkAgainAfterDel()
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var pods = new List<TestPod>();
        for (var i = 0; i <= Configs.Slash29Capacity; i++) pods.Add(owned.Add(await TestPod.Create()));
        var cni = new CniDriver(Flavor, net);
        var conf = Configs.Slash29Config(net, "1.1.0");
        var status = new CniCall("STATUS") { Stdin = conf.ToJsonString() };

        (await cni.Invoke(status)).AssertSilentSuccess();
        for (var i = 0; i < Configs.Slash29Capacity; i++)
        {
            (await cni.Add(pods[i], conf)).AssertSuccess();
            if (i < Configs.Slash29Capacity - 1) (await cni.Invoke(status)).AssertSilentSuccess();
        }

        (await cni.Invoke(status)).AssertError(50, $"0 of {Configs.Slash29Capacity} free", Configs.Slash29(net));
        // STATUS and ADD agree.
        (await cni.Add(pods[^1], conf)).AssertError(102);

        (await cni.Del(pods[0], conf)).AssertSilentSuccess();
        (await cni.Invoke(status)).AssertSilentSuccess();

        // Full again; then a pod's netns vanishes without DEL: its lease is reclaimable, so ADD can be served.
        (await cni.Add(pods[^1], conf)).AssertSuccess();
        (await cni.Invoke(status)).AssertError(50, $"0 of {Configs.Slash29Capacity} free");
        await pods[1].NetNs.Delete();
        (await cni.Invoke(status)).AssertSilentSuccess();

        foreach (var p in pods) (await cni.Del(p, conf, netns: p == pods[1] ? "" : null)).AssertSilentSuccess();
        Assert.Empty(await LeaseList.Of(net));
    }
}
