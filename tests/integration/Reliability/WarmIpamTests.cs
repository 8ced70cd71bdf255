using System.Diagnostics;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #10, the warm IPAM (`podbridge-ipam serve`): the plugins use it when it answers and fall back to the
/// in-process IPAM when it does not, without weakening a guarantee — no lease lost when it is SIGKILLed in the middle
/// of a storm, no duplicate address, no stale view of the database after in-process writes, a hung server costs a
/// pod start well under a second, and only root can reach the socket.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class WarmIpamTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    /// <summary>The standalone IPAM plugin's config: the network's ipam section, as a runtime would pass it.</summary>
    private static JsonObject IpamConf(TestNetwork net)
    {
        var conf = net.Config(Flavor);
        conf["type"] = Binaries.PodBridgeIpamName;
        return conf;
    }

    private static Task<CniOutcome> Ipam(string command, Attachment a, JsonObject conf) =>
        PluginRunner.Run(Binaries.PodBridgeIpam, a.Call(command, conf));

    private static string AddressOf(CniOutcome add) =>
        Kernel.AddressOf(((string)add.AssertSuccess().Result["ips"]![0]!["address"]!).Split('/')[0]);

    [Fact]
    public async Task Server_SIGKILLed_at_random_moments_during_200_adds_loses_no_lease_and_duplicates_no_address()
    {
        var runs = Knobs.Int("PODBRIDGE_IT_WARM_STORM", 200);
        const int width = 8, namespaces = 10;
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var netns = new List<TestNetNs>();
        for (var i = 0; i < namespaces; i++) netns.Add(owned.Add(await TestNetNs.Create()));
        var conf = IpamConf(net);
        var server = owned.Add(await WarmServer.Start(net.DataDir));
        var attachments = Enumerable.Range(0, runs)
            .Select(i => new Attachment(netns[i % namespaces], RunScope.NewContainerId("w"), $"eth{i / namespaces}"))
            .ToArray();

        var rng = new Random(Knobs.Int("PODBRIDGE_IT_SEED", Environment.TickCount));
        using var stop = new CancellationTokenSource();
        var kills = 0;
        var killer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await Task.Delay(rng.Next(20, 150));
                server.Kill();
                kills++;
                await Task.Delay(rng.Next(0, 60));
                if (!stop.IsCancellationRequested) await server.Restart();
            }
        });

        var results = new CniOutcome[runs];
        var clock = Stopwatch.StartNew();
        await Parallel.ForEachAsync(Enumerable.Range(0, runs), new ParallelOptions { MaxDegreeOfParallelism = width },
            async (i, _) => results[i] = await Ipam("ADD", attachments[i], conf));
        stop.Cancel();
        await killer;
        server.Kill();

        foreach (var r in results) r.AssertSuccess();
        var addresses = results.Select(AddressOf).ToArray();
        var dup = addresses.GroupBy(a => a).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(dup.Count == 0, $"addresses handed out twice: {string.Join(", ", dup)}");
        var leases = await LeaseList.Of(net);
        Assert.Equal(
            attachments.Select((a, i) => (a.ContainerId, a.IfName, addresses[i])).Order(),
            leases.Select(l => (l.ContainerId, l.IfName, l.Ip)).Order());
        output.WriteLine($"{runs} ADDs {width}-wide in {clock.Elapsed.TotalSeconds:F1} s; server SIGKILLed {kills} times, " +
                         $"answered {server.Served} requests; the rest fell back in-process");
        Assert.True(kills >= 2, $"the server was killed only {kills} times: the storm was too short to test anything");
        Assert.True(server.Served > 0, "the warm server never answered");
    }

    [Fact]
    public async Task Hung_server_times_out_into_the_in_process_path_and_the_server_then_sees_what_it_wrote()
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var ns = owned.Add(await TestNetNs.Create());
        var conf = IpamConf(net);
        var server = owned.Add(await WarmServer.Start(net.DataDir));
        var pods = Enumerable.Range(0, 6).Select(i => new Attachment(ns, RunScope.NewContainerId("h"), $"eth{i}")).ToArray();

        var first = AddressOf(await Ipam("ADD", pods[0], conf));
        // The server logs a request after answering it: give its stderr line a moment.
        Assert.True(await Kernel.Eventually(() => Task.FromResult(server.Served == 1)), $"the first ADD did not go through the server\n{server.Output}");

        await server.Signal("STOP");
        var fallback = new List<string>();
        for (var i = 1; i <= 3; i++)
        {
            var add = await Ipam("ADD", pods[i], conf);
            Assert.True(add.Elapsed < TimeSpan.FromSeconds(2.5), $"a hung server held the ADD for {add.Elapsed.TotalMilliseconds:F0} ms\n{add}");
            fallback.Add(AddressOf(add));
        }
        await server.Signal("CONT");

        // The server's open database is stale now: the next answers must come from a reopened one.
        var served = server.Served;
        var after = new List<string>();
        for (var i = 4; i < 6; i++) after.Add(AddressOf(await Ipam("ADD", pods[i], conf)));
        Assert.True(await Kernel.Eventually(() => Task.FromResult(server.Served >= served + 2)), $"the server did not answer the last ADDs\n{server.Output}");
        var all = new[] { first }.Concat(fallback).Concat(after).ToArray();
        Assert.Equal(all.Length, all.Distinct().Count());
        Assert.Equal(all.Order(), (await LeaseList.Of(net)).Select(l => l.Ip).Order());

        // The requests queued while it was stopped reached it after their clients had gone: they changed nothing.
        foreach (var p in pods) (await Ipam("DEL", p, conf)).AssertSilentSuccess();
        Assert.Empty(await LeaseList.Of(net));
    }

    [Fact]
    public async Task A_bridge_ADD_that_fails_after_the_IPAM_releases_its_lease_through_the_server()
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var pod = owned.Add(await TestPod.Create());
        var server = owned.Add(await WarmServer.Start(net.DataDir));
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        // The pod's interface name is taken: ADD fails after the IPAM allocated, and its rollback must release
        // the address with a DEL (the ADD's request, sent to the server as a DEL).
        (await Sh.Ip(pod.NetNs.Name, "link", "add", pod.IfName, "type", "bridge")).EnsureOk(); // no dummy module here

        (await cni.Add(pod, conf)).AssertError();
        Assert.True(await Kernel.Eventually(() => Task.FromResult(server.Served >= 2)), $"ADD and its rollback did not both go through the server\n{server.Output}");
        Assert.Empty(await LeaseList.Of(net));
    }

    [Fact]
    public async Task The_socket_and_a_data_dir_the_server_creates_are_root_only()
    {
        var dir = Path.Combine(RunScope.NewTempDir("warm"), "data");
        try
        {
            using var server = await WarmServer.Start(dir);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(server.SocketPath));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir));
            Assert.True((File.GetAttributes(server.SocketPath) & FileAttributes.Directory) == 0);

            // A second server on the same dir refuses instead of stealing the socket.
            var second = await Sh.Run(Binaries.PodBridgeIpam, "serve", "--data-dir", dir);
            Assert.False(second.Ok, second.ToString());
            Assert.Contains("already", second.Stderr);
        }
        finally
        {
            RunScope.TryDeleteDirectory(Path.GetDirectoryName(dir)!);
        }
    }
}
