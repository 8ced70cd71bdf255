using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3, leaked leases: a pod whose netns vanished without a DEL (crashed runtime, lost DEL) must not hold its
/// address forever, and a live pod's address must never be taken from it.
/// </summary>
public sealed class ReclamationTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    [Fact]
    public async Task FullSlash29_ReclaimsTheLeaseOfAGoneNetNs_NeverALiveOne()
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var pods = new List<TestPod>();
        for (var i = 0; i < Configs.Slash29Capacity; i++) pods.Add(owned.Add(await TestPod.Create()));
        var late = owned.Add(await TestPod.Create());
        var later = owned.Add(await TestPod.Create());
        var cni = new CniDriver(Flavor, net);
        var conf = Configs.Slash29Config(net);

        var results = new List<System.Text.Json.Nodes.JsonObject>();
        foreach (var p in pods) results.Add((await cni.Add(p, conf)).AssertSuccess().Result);
        var addresses = results.Select(r => Assert.Single(Must.ResultAddresses(r))).ToList();
        Assert.Equal(Enumerable.Range(2, 5).Select(net.V4), addresses.Order(StringComparer.Ordinal));

        // Every lease alive: the range is exhausted, and the refused ADD leaves nothing.
        var ports = await KernelView.BridgePortNames(net);
        (await cni.Add(late, conf)).AssertError(102, Configs.Slash29(net));
        await Must.HaveLeftNothing(net, Attachment.Of(late), ports);
        var leasesBefore = await LeaseList.Of(net);
        Assert.Equal(pods.Select(p => p.ContainerId).Order(), leasesBefore.Select(l => l.ContainerId).Order());
        Assert.All(leasesBefore, l => Assert.False(l.Dead, $"{l} is alive but listed as dead"));

        // The runtime loses pod 2 without a DEL.
        var victim = pods[2];
        var victimAddress = addresses[2];
        await victim.NetNs.Delete();
        Assert.True(await Kernel.Eventually(async () => !await Kernel.LinkExists(net.NodeNs, Must.HostVethOf(results[2]))),
            "the victim's host veth outlived its netns");
        var listed = Assert.Single(await LeaseList.Of(net), l => l.ContainerId == victim.ContainerId);
        Assert.True(listed.Dead, "`leases` must flag the lease of a gone netns as dead");

        var reclaimed = (await cni.Add(late, conf)).AssertSuccess().Result;
        Assert.Equal(victimAddress, Assert.Single(Must.ResultAddresses(reclaimed)));
        var leasesAfter = await LeaseList.Of(net);
        Assert.DoesNotContain(leasesAfter, l => l.ContainerId == victim.ContainerId);
        Assert.Equal(late.ContainerId, Assert.Single(leasesAfter, l => l.Ip == victimAddress).ContainerId);
        Assert.Equal(Configs.Slash29Capacity, leasesAfter.Count);
        Assert.Equal($"{victimAddress}/29", Assert.Single(await Kernel.GlobalAddresses(late.NetNs.Name, late.IfName)).Cidr);
        output.WriteLine($"reclaimed {victimAddress} from {victim.ContainerId} (netns gone) for {late.ContainerId}");

        // Full again, all alive: still nothing is taken from a live pod.
        ports = await KernelView.BridgePortNames(net);
        (await cni.Add(later, conf)).AssertError(102);
        await Must.HaveLeftNothing(net, Attachment.Of(later), ports);
        Assert.Equal(leasesAfter.OrderBy(l => l.Ip), (await LeaseList.Of(net)).OrderBy(l => l.Ip));

        foreach (var p in pods.Where(p => p != victim).Append(late))
            (await cni.Del(p, conf)).AssertSilentSuccess();
        (await cni.Del(victim, conf, netns: "")).AssertSilentSuccess();
        Assert.Empty(await LeaseList.Of(net));
    }

    [Fact]
    public async Task DuplicateAdd_ReplacesTheAttachmentOfAGoneNetNs_ButIs104WhileItLives()
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        var first = owned.Add(await TestNetNs.Create());
        var a = new Attachment(first, RunScope.NewContainerId("dup"), "eth0");

        var r1 = (await cni.Invoke(a.Call("ADD", conf))).AssertSuccess().Result;
        await first.Delete();
        // The kernel tears a netns down asynchronously; until then the host veth (named from containerID/ifname)
        // still exists and a new ADD for the same attachment would collide with it.
        Assert.True(await Kernel.Eventually(async () => !await Kernel.LinkExists(net.NodeNs, Must.HostVethOf(r1))),
            "the host veth outlived its netns");

        // Same (containerID, ifname), new sandbox: the stale lease is replaced, not duplicated, not refused.
        var second = owned.Add(await TestNetNs.Create());
        var a2 = a with { NetNs = second };
        var r2 = (await cni.Invoke(a2.Call("ADD", conf))).AssertSuccess().Result;
        var address = Assert.Single(Must.ResultAddresses(r2));
        var lease = Assert.Single(await LeaseList.Of(net));
        Assert.Equal((a.ContainerId, a.IfName, address), (lease.ContainerId, lease.IfName, lease.Ip));
        Assert.Equal($"{address}/24", Assert.Single(await Kernel.GlobalAddresses(second.Name, a.IfName)).Cidr);

        // While that attachment lives, a second ADD for it is 104, from its own netns or any other, and changes nothing.
        var third = owned.Add(await TestNetNs.Create());
        var ports = await KernelView.BridgePortNames(net);
        foreach (var dup in new[] { a2, a with { NetNs = third } })
        {
            (await cni.Invoke(dup.Call("ADD", conf))).AssertError(104, a.ContainerId);
            Assert.Equal(lease, Assert.Single(await LeaseList.Of(net)));
            Assert.Equal(ports, await KernelView.BridgePortNames(net));
            Assert.Equal($"{address}/24", Assert.Single(await Kernel.GlobalAddresses(second.Name, a.IfName)).Cidr);
        }
        Assert.Empty(await KernelView.PodLinks(third));
        (await cni.Invoke(a2.Call("CHECK", conf) with { Stdin = CniDriver.WithPrevResult(conf, r2) })).AssertSilentSuccess();

        (await cni.Invoke(a2.Call("DEL", conf) with { Stdin = CniDriver.WithPrevResult(conf, r2) })).AssertSilentSuccess();
        Assert.Empty(await LeaseList.Of(net));
        Assert.Empty(await KernelView.PodLinks(second));
    }
}
