using System.Diagnostics;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3, concurrency: a node starting many pods at once runs many plugin processes against one lease database.
/// Each round: 64 ADDs at the same moment, every address distinct in the results, in the lease list and in the
/// kernel; then 64 DELs at the same moment, and nothing left.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class ConcurrencyTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    /// <param name="warm">With `podbridge-ipam serve` answering the plugins' IPAM requests (issue #10).</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SixtyFourConcurrentAdds_ThenDels_TenRounds_NoDuplicateNoLeak(bool warm)
    {
        const int width = 64;
        var rounds = Knobs.Int("PODBRIDGE_IT_CONCURRENCY_ROUNDS", 10);
        var clock = Stopwatch.StartNew();

        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var server = warm ? owned.Add(await WarmServer.Start(net.DataDir)) : null;
        var netns = new List<TestNetNs>();
        for (var i = 0; i < width; i++) netns.Add(owned.Add(await TestNetNs.Create()));
        var setupSeconds = clock.Elapsed.TotalSeconds;
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);   // a /24: the round-robin cursor wraps every ~4 rounds
        var seen = new HashSet<string>();
        var addMs = new List<double>();
        var delMs = new List<double>();
        var roundSeconds = new List<double>();

        for (var round = 0; round < rounds; round++)
        {
            var roundClock = Stopwatch.StartNew();
            var pods = netns.Select(ns => new Attachment(ns, RunScope.NewContainerId($"r{round}"), "eth0")).ToArray();
            var adds = await Task.WhenAll(pods.Select(p => cni.Invoke(p.Call("ADD", conf))));
            foreach (var add in adds) add.AssertSuccess();
            addMs.AddRange(adds.Select(a => a.Elapsed.TotalMilliseconds));

            var results = adds.Select(a => Assert.Single(Must.ResultAddresses(a.Result))).ToArray();
            Duplicates("results", results, round);

            var leases = await LeaseList.Of(net);
            Assert.Equal(
                pods.Select((p, i) => (p.ContainerId, results[i])).Order(),
                leases.Select(l => (l.ContainerId, l.Ip)).Order());

            var kernel = await Task.WhenAll(pods.Select(async p => (p, await Kernel.GlobalAddresses(p.NetNs.Name, p.IfName))));
            for (var i = 0; i < width; i++)
                Assert.Equal($"{results[i]}/24", Assert.Single(kernel[i].Item2).Cidr);
            Duplicates("the kernel", kernel.SelectMany(k => k.Item2.Select(a => a.Local)).ToArray(), round);
            Assert.Equal(adds.Select(a => Must.HostVethOf(a.Result)).Order(StringComparer.Ordinal), await KernelView.BridgePortNames(net));
            seen.UnionWith(results);

            var dels = await Task.WhenAll(pods.Select((p, i) => cni.Invoke(p.Call("DEL", conf) with { Stdin = CniDriver.WithPrevResult(conf, adds[i].Result) })));
            foreach (var del in dels) del.AssertSilentSuccess();
            delMs.AddRange(dels.Select(d => d.Elapsed.TotalMilliseconds));

            Assert.Empty(await LeaseList.Of(net));
            Assert.True(await Kernel.Eventually(async () => (await KernelView.StrayNodeLinks(net)).Count == 0),
                $"round {round}: node netns still holds [{string.Join(", ", (await KernelView.StrayNodeLinks(net)).Select(l => l.Name))}]");
            foreach (var p in pods)
                Assert.False(await Kernel.LinkExists(p.NetNs.Name, p.IfName), $"round {round}: {p} still has {p.IfName}");
            roundSeconds.Add(roundClock.Elapsed.TotalSeconds);
        }

        output.WriteLine($"{rounds} rounds x {width} concurrent ADD + {width} concurrent DEL; setup {setupSeconds:F1} s, total {clock.Elapsed.TotalSeconds:F1} s");
        output.WriteLine($"per round: median {Knobs.Median(roundSeconds):F2} s, max {roundSeconds.Max():F2} s");
        output.WriteLine($"ADD latency under {width}-way concurrency: median {Knobs.Median(addMs):F0} ms, p95 {P95(addMs):F0} ms, max {addMs.Max():F0} ms");
        output.WriteLine($"DEL latency: median {Knobs.Median(delMs):F0} ms, p95 {P95(delMs):F0} ms, max {delMs.Max():F0} ms");
        output.WriteLine($"distinct addresses handed out over all rounds: {seen.Count} (the /24 has 253)");
        if (server is not null)
        {
            output.WriteLine($"the warm server answered {server.Served} of {rounds * width * 2} IPAM requests");
            Assert.True(server.Served > 0, "the warm server never answered");
        }
    }

    private static void Duplicates(string where, string[] addresses, int round)
    {
        var dup = addresses.GroupBy(a => a).Where(g => g.Count() > 1).Select(g => $"{g.Key} x{g.Count()}").ToList();
        if (dup.Count > 0) throw new XunitException($"round {round}: duplicate addresses in {where}: {string.Join(", ", dup)}");
    }

    private static double P95(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? 0 : sorted[(int)Math.Ceiling(sorted.Length * 0.95) - 1];
    }
}
