using System.Text.RegularExpressions;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests.Cluster;

[CollectionDefinition(Name)]
public sealed class ClusterCollection
{
    public const string Name = "simulated cluster";
}

/// <summary>Three nodes, each running the published agent against the stand-in API server; shared by the tests below.</summary>
public sealed class ThreeNodeCluster : IAsyncLifetime
{
    public SimulatedCluster Cluster { get; private set; } = null!;
    public List<TimeSpan> StartToConflist { get; } = [];
    public const string NodesOwnPortmap = "#!/bin/sh\n# the node's own portmap\n";

    public async Task InitializeAsync()
    {
        Cluster = await SimulatedCluster.Create();
        try
        {
            for (var i = 1; i <= 3; i++) Cluster.Register(await Cluster.AddNodeNamespace(i));
            await Cluster.AddOutside();
            // What the image carries: our binaries plus Debian's portmap and loopback. Node 3 has its own portmap,
            // which must stay.
            var source = Cluster.NewDir("source");
            foreach (var (name, dir) in new[] { ("podbridge", Binaries.PodBridgeDir), ("podbridge-ipam", Binaries.PodBridgeDir),
                         ("portmap", Binaries.ReferenceDir), ("loopback", Binaries.ReferenceDir) })
                File.CreateSymbolicLink(Path.Combine(source, name), Binaries.Require(dir, name));
            await File.WriteAllTextAsync(Path.Combine(Cluster.Nodes[2].BinDir, "portmap"), NodesOwnPortmap);
            var agents = Cluster.Nodes.Select(n => Cluster.StartAgent(n, "--source-dir", source)).ToList();
            foreach (var agent in agents)
            {
                await Cluster.WaitFor($"{agent.Node.Name}'s conflist", () => Task.FromResult(File.Exists(agent.Node.ConflistPath)));
                StartToConflist.Add(agent.Started.Elapsed);
            }
            foreach (var node in Cluster.Nodes)
                await Cluster.WaitFor($"routes on {node.Name}", async () => (await node.AgentRoutes()).Count == 4);
        }
        catch
        {
            await Cluster.DisposeAsync();
            throw;
        }
    }

    public async Task DisposeAsync() => await Cluster.DisposeAsync();
}

[Collection(ClusterCollection.Name)]
public sealed class ClusterTests(ThreeNodeCluster fixture, ITestOutputHelper output) : IClassFixture<ThreeNodeCluster>
{
    private SimulatedCluster Cluster => fixture.Cluster;

    [Fact]
    public async Task Each_node_gets_a_conflist_with_its_pod_cidrs_and_routes_to_the_other_nodes()
    {
        output.WriteLine($"agent start -> conflist written: {string.Join(", ", fixture.StartToConflist.Select(t => $"{t.TotalMilliseconds:0} ms"))}");
        output.WriteLine(Cluster.AgentLogs());
        foreach (var node in Cluster.Nodes)
        {
            var text = await File.ReadAllTextAsync(node.ConflistPath);
            Assert.Contains($"\"subnet\": \"{SimulatedCluster.PodCidrV4(node.Index)}\"", text);
            Assert.Contains($"\"subnet\": \"{SimulatedCluster.PodCidrV6(node.Index)}\"", text);
            Assert.Contains("\"type\": \"portmap\"", text);
            Assert.Contains("\"portMappings\": true", text);
            Assert.DoesNotContain("ipMasq", text);
            Assert.Equal(200, node.Healthz(AgentProcess.HealthzPort));

            // The binaries landed in the node's bin dir, identical to the published ones; portmap and loopback only
            // where the node had none.
            foreach (var name in new[] { "podbridge", "podbridge-ipam" })
                Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(Binaries.PodBridgeDir, name)),
                    await File.ReadAllBytesAsync(Path.Combine(node.BinDir, name)));
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(Binaries.ReferenceDir, "loopback")),
                await File.ReadAllBytesAsync(Path.Combine(node.BinDir, "loopback")));
            if (node.Index == 3)
                Assert.Equal(ThreeNodeCluster.NodesOwnPortmap, await File.ReadAllTextAsync(Path.Combine(node.BinDir, "portmap")));
            else
                Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(Binaries.ReferenceDir, "portmap")),
                    await File.ReadAllBytesAsync(Path.Combine(node.BinDir, "portmap")));
            Assert.Empty(Directory.GetFiles(node.BinDir, ".*")); // no temp file left behind

            var expected = Cluster.Nodes.Where(o => o != node)
                .SelectMany(o => new[]
                {
                    $"{SimulatedCluster.PodCidrV4(o.Index)} via {SimulatedCluster.NodeV4(o.Index)}",
                    $"{SimulatedCluster.PodCidrV6(o.Index)} via {SimulatedCluster.NodeV6(o.Index)}",
                })
                .Order(StringComparer.Ordinal).ToList();
            Assert.Equal(expected, await node.AgentRoutes());
        }
    }

    [Fact]
    public async Task Pods_on_different_nodes_reach_each_other_and_see_the_senders_pod_address()
    {
        var (a, aV4, aV6) = await Cluster.AddPod(Cluster.Nodes[0]);
        var (b, bV4, bV6) = await Cluster.AddPod(Cluster.Nodes[1]);
        Assert.StartsWith("10.244.1.", aV4);
        Assert.StartsWith("10.244.2.", bV4);

        // The receiver counts echo requests by source address: no NAT means it sees a's pod address.
        await CountEchoRequests(b.NetNs, "ip", aV4);
        await CountEchoRequests(b.NetNs, "ip6", aV6!);
        (await a.NetNs.Exec("ping", "-c", "2", "-W", "2", bV4)).EnsureOk();
        (await a.NetNs.Exec("ping", "-6", "-c", "2", "-W", "2", bV6!)).EnsureOk();
        Assert.Equal(2, await EchoRequests(b.NetNs, "ip"));
        Assert.Equal(2, await EchoRequests(b.NetNs, "ip6"));
    }

    [Fact]
    public async Task Pod_traffic_to_outside_the_cluster_leaves_masqueraded_with_the_node_address()
    {
        var node = Cluster.Nodes[2];
        var (pod, _, _) = await Cluster.AddPod(node);
        var outside = Cluster.Outside!;
        await CountEchoRequests(outside, "ip", SimulatedCluster.NodeV4(node.Index));
        // The outside namespace has no route to any pod CIDR: the reply only finds its way back through the NAT.
        (await pod.NetNs.Exec("ping", "-c", "2", "-W", "2", SimulatedCluster.OutsideV4)).EnsureOk();
        Assert.Equal(2, await EchoRequests(outside, "ip"));
    }

    [Fact]
    public async Task A_joining_node_gets_routes_on_every_node_and_deleting_it_removes_them()
    {
        // A node that exists only in the API (its address on the kind network is unused): routes are all we check.
        var name = $"{RunScope.Prefix}-node9";
        var route = $"{SimulatedCluster.PodCidrV4(9)} via {SimulatedCluster.NodeV4(9)}";
        var before = new Dictionary<SimNode, string>();
        foreach (var node in Cluster.Nodes) before[node] = await node.AllRoutes();

        var joinedAt = DateTime.UtcNow;
        Cluster.Api.AddNode(name, [SimulatedCluster.PodCidrV4(9)], SimulatedCluster.NodeV4(9));
        try
        {
            var joined = await Cluster.WaitFor("the new node's route on every node", async () =>
            {
                foreach (var node in Cluster.Nodes)
                    if (!(await node.AgentRoutes()).Contains(route)) return false;
                return true;
            });
            output.WriteLine($"node join -> routes present on all 3 nodes: {joined.TotalMilliseconds:0} ms (polled with ip)");
            // The agents' own log stamps, without the polling's cost: the last of the three "added" lines.
            var added = Cluster.AgentLogs().Split('\n').Where(l => l.Contains($"route {SimulatedCluster.PodCidrV4(9)} via", StringComparison.Ordinal) && l.Contains(" added", StringComparison.Ordinal))
                .Select(l => DateTime.Parse(l[..24], System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AdjustToUniversal | System.Globalization.DateTimeStyles.AssumeUniversal)).ToList();
            Assert.Equal(3, added.Count);
            output.WriteLine($"node join -> last agent's route added (agent log): {(added.Max() - joinedAt).TotalMilliseconds:0} ms");
            foreach (var node in Cluster.Nodes)
                Assert.Contains($"ip daddr {SimulatedCluster.PodCidrV4(9)} return", await node.Ruleset());
        }
        finally
        {
            Cluster.Api.DeleteNode(name);
        }
        var left = await Cluster.WaitFor("the deleted node's routes gone everywhere", async () =>
        {
            foreach (var node in Cluster.Nodes)
                if ((await node.AgentRoutes()).Contains(route)) return false;
            return true;
        });
        output.WriteLine($"node delete -> routes gone on all 3 nodes: {left.TotalMilliseconds:0} ms");
        foreach (var node in Cluster.Nodes)
        {
            Assert.Equal(before[node], await node.AllRoutes());
            Assert.DoesNotContain(SimulatedCluster.PodCidrV4(9), await node.Ruleset());
        }
    }

    private static async Task CountEchoRequests(TestNetNs ns, string family, string source)
    {
        var table = $"count{family}";
        var icmp = family == "ip" ? "icmp type echo-request" : "icmpv6 type echo-request";
        var script = $"add table {family} {table}\n" +
                     $"add chain {family} {table} input {{ type filter hook input priority 0; policy accept; }}\n" +
                     $"add rule {family} {table} input {family} saddr {source} {icmp} counter\n";
        (await Sh.Run("ip", ["netns", "exec", ns.Name, "nft", "-f", "-"], stdin: script)).EnsureOk();
    }

    private static async Task<int> EchoRequests(TestNetNs ns, string family)
    {
        var text = (await ns.Exec("nft", "list", "table", family, $"count{family}")).EnsureOk().Stdout;
        var match = Regex.Match(text, @"counter packets (\d+)");
        Assert.True(match.Success, text);
        return int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }
}
