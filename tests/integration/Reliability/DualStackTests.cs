using System.Diagnostics;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3: one v4 and one v6 range set give every pod one address of each family, routed both ways, usable the
/// moment ADD returns (no IPv6 duplicate address detection to wait for), and all of it released by DEL.
/// </summary>
public sealed class DualStackTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    /// <summary>In a private node netns: IPv6 forwarding on this machine's namespace would change how it treats RAs.</summary>
    [Fact]
    public async Task TwoPods_GetBothFamilies_PingAtOnce_CheckAndReleaseEverything()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, "1.0.0", dualStack: true);
        conf["isDefaultGateway"] = true;

        var ra = (await cni.Add(a, conf)).AssertSuccess().Result;
        // Checked before b's ADD: a new port with a lower MAC changes the bridge's MAC (the result's interfaces[0]).
        var va = await Expect.ResultMatchesKernel(ra, "1.0.0", net, a, Flavor, dualStack: true, isGateway: true, defaultRoute: true);
        var rb = (await cni.Add(b, conf)).AssertSuccess().Result;
        var addedAt = Stopwatch.GetTimestamp();

        // Right after b's ADD returns, exactly once, waiting 1 s: a tentative address ignores neighbor solicitations
        // until DAD ends (dad_transmits x retrans_time = 1 s by default, plus a random start delay), so this ping6
        // fails unless the plugin added b's address without duplicate address detection (with enabledad it fails).
        var (a6, b6) = (va.V6, V6(rb));
        var ping6 = await a.NetNs.Exec("ping", "-6", "-c1", "-W1", b6);
        var firstPingMs = Stopwatch.GetElapsedTime(addedAt).TotalMilliseconds;
        Assert.True(ping6.Ok, $"the first ping6 {a6} -> {b6}, sent right after b's ADD, failed: the address is not usable at once\n{ping6}");
        output.WriteLine($"ping6 pod->pod answered {firstPingMs:F0} ms after the ADD returned, first attempt, no sleep");

        var vb = await Expect.ResultMatchesKernel(rb, "1.0.0", net, b, Flavor, dualStack: true, isGateway: true, defaultRoute: true);
        foreach (var pod in new[] { a, b })
        {
            var addrs = await Kernel.GlobalAddresses(pod.NetNs.Name, pod.IfName);
            Assert.Equal(["inet", "inet6"], addrs.Select(x => x.Family).Order());
            Assert.All(addrs, x => Assert.False(x.Tentative, $"{x.Cidr} in {pod} is tentative (DAD running)"));
            var routes6 = await Kernel.Routes(pod.NetNs.Name, 6);
            Assert.Contains(routes6, r => r.Dst == net.Subnet6 && r.Dev == pod.IfName);
        }
        var bridgeAddrs = (await Kernel.GlobalAddresses(net.NodeNs, net.Bridge)).Select(x => x.Cidr).ToList();
        Assert.Contains($"{net.Gateway4}/24", bridgeAddrs);
        Assert.Contains($"{net.Gateway6}/64", bridgeAddrs);
        Assert.All(await Kernel.GlobalAddresses(net.NodeNs, net.Bridge), x => Assert.False(x.Tentative, $"gateway {x.Cidr} is tentative"));

        (await Kernel.Ping(a.NetNs.Name, vb.V4)).EnsureOk();
        (await Kernel.Ping(b.NetNs.Name, va.V4)).EnsureOk();
        (await b.NetNs.Exec("ping", "-6", "-c1", "-W2", a6)).EnsureOk();
        (await Kernel.Ping(a.NetNs.Name, net.Gateway4)).EnsureOk();
        (await a.NetNs.Exec("ping", "-6", "-c1", "-W2", net.Gateway6)).EnsureOk();

        // One lease per family per pod, and exactly the addresses the results report.
        var leases = await LeaseList.Of(net);
        Assert.Equal(
            new[] { (a.ContainerId, va.V4), (a.ContainerId, va.V6), (b.ContainerId, vb.V4), (b.ContainerId, vb.V6) }.Order(),
            leases.Select(l => (l.ContainerId, l.Ip)).Order());

        (await cni.Check(a, conf, ra)).AssertSilentSuccess();
        (await cni.Check(b, conf, rb)).AssertSilentSuccess();

        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        (await cni.Del(b, conf, rb)).AssertSilentSuccess();
        await Expect.Deleted(net, a, va.HostVeth);
        await Expect.Deleted(net, b, vb.HostVeth);
        Assert.Empty(await LeaseList.Of(net));
        Assert.True(await Kernel.Eventually(async () => (await KernelView.StrayNodeLinks(net)).Count == 0),
            $"node netns still holds [{string.Join(", ", (await KernelView.StrayNodeLinks(net)).Select(l => l.Name))}] after DEL");
    }

    private static string V6(System.Text.Json.Nodes.JsonObject result) =>
        Must.ResultAddresses(result).Single(x => x.Contains(':'));
}
