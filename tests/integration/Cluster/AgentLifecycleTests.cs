using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests.Cluster;

/// <summary>The agent's own lifecycle on small clusters of their own: waiting, changes, restarts, a second agent, SIGTERM.</summary>
[Collection(ClusterCollection.Name)]
public sealed class AgentLifecycleTests(ITestOutputHelper output)
{
    /// <summary>What "nothing changed" compares: the files' inode+mtime, the routes, the nft ruleset.</summary>
    private sealed record NodeSnapshot(string Files, string Routes, string Ruleset);

    private static async Task<NodeSnapshot> Snapshot(SimNode node)
    {
        // inode and nanosecond mtime: a rewrite with equal content still shows.
        var files = (await Sh.Run("stat", "-c", "%n %i %y", node.ConflistPath, Path.Combine(node.BinDir, "podbridge"),
            Path.Combine(node.BinDir, "podbridge-ipam"))).EnsureOk().Stdout;
        var extra = string.Join(",", Directory.GetFiles(node.ConfDir).Concat(Directory.GetFiles(node.BinDir)).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        return new NodeSnapshot(files + "\n" + extra, await node.AllRoutes(), await node.Ruleset());
    }

    private static async Task<(SimulatedCluster Cluster, SimNode Node, AgentProcess Agent)> TwoNodes(Action<SimulatedCluster>? before = null)
    {
        var cluster = await SimulatedCluster.Create();
        try
        {
            var node = await cluster.AddNodeNamespace(1);
            cluster.Register(node);
            cluster.Api.AddNode($"{RunScope.Prefix}-node2", [SimulatedCluster.PodCidrV4(2)], SimulatedCluster.NodeV4(2));
            before?.Invoke(cluster);
            var agent = cluster.StartAgent(node, "--source-dir", Binaries.PodBridgeDir);
            await cluster.WaitFor("the conflist", () => Task.FromResult(File.Exists(node.ConflistPath)));
            await cluster.WaitFor("the route to node2", async () => (await node.AgentRoutes()).Count == 1);
            await cluster.WaitFor("healthz 200", () => Task.FromResult(node.Healthz(AgentProcess.HealthzPort) == 200));
            return (cluster, node, agent);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    [Fact]
    public async Task Sigterm_leaves_everything_and_a_restart_changes_nothing()
    {
        var (cluster, node, agent) = await TwoNodes();
        await using var _ = cluster;
        var before = await Snapshot(node);
        Assert.Equal(0, await agent.Terminate());
        Assert.Contains("SIGTERM", agent.ReadLog());
        Assert.Equal(before, await Snapshot(node));

        var restarted = cluster.StartAgent(node, "--source-dir", Binaries.PodBridgeDir);
        await cluster.WaitFor("the restarted agent ready", () => Task.FromResult(node.Healthz(AgentProcess.HealthzPort) == 200));
        await Task.Delay(500); // room for a late write, which must not come
        Assert.Equal(before, await Snapshot(node));
        Assert.False(restarted.HasExited);
        Assert.DoesNotContain("installed", restarted.ReadLog());
        Assert.DoesNotContain("wrote", restarted.ReadLog());
        Assert.DoesNotContain("masquerade: table", restarted.ReadLog());
        Assert.DoesNotContain(" added", restarted.ReadLog());
    }

    [Fact]
    public async Task A_second_agent_on_the_same_node_changes_nothing_and_breaks_nothing()
    {
        var (cluster, node, first) = await TwoNodes();
        await using var _ = cluster;
        var before = await Snapshot(node);
        var second = cluster.StartAgent(node, "--source-dir", Binaries.PodBridgeDir);
        await cluster.WaitFor("the second agent's first reconcile", () => Task.FromResult(second.ReadLog().Contains("ready:")));
        Assert.Equal(before, await Snapshot(node));
        Assert.Equal(200, node.Healthz(AgentProcess.HealthzPort));

        // Both follow a change, and converge on the same state.
        cluster.Api.AddNode($"{RunScope.Prefix}-node3", [SimulatedCluster.PodCidrV4(3)], SimulatedCluster.NodeV4(3));
        await cluster.WaitFor("the route to node3", async () => (await node.AgentRoutes()).Count == 2);
        await cluster.WaitFor("both agents saw node3", () =>
            Task.FromResult(first.ReadLog().Contains("-node3 ADDED") && second.ReadLog().Contains("-node3 ADDED")));
        Assert.Equal(2, (await node.AgentRoutes()).Count);
        Assert.Equal(0, await second.Terminate());
        Assert.False(first.HasExited);
        Assert.Equal(2, (await node.AgentRoutes()).Count);
    }

    [Fact]
    public async Task The_agent_waits_for_its_pod_cidrs_and_rewrites_the_conflist_when_they_change()
    {
        var cluster = await SimulatedCluster.Create();
        await using var _ = cluster;
        var node = await cluster.AddNodeNamespace(1);
        cluster.Register(node, withPodCidrs: false);
        var agent = cluster.StartAgent(node, "--source-dir", Binaries.PodBridgeDir);
        await cluster.WaitFor("the agent waiting", () => Task.FromResult(agent.ReadLog().Contains("has no spec.podCIDRs yet")));
        Assert.False(File.Exists(node.ConflistPath));
        await cluster.WaitFor("healthz 503", () => Task.FromResult(node.Healthz(AgentProcess.HealthzPort) == 503));

        cluster.Api.UpdateNode(node.Name, podCidrs: [SimulatedCluster.PodCidrV4(1)]);
        var written = await cluster.WaitFor("the conflist", () => Task.FromResult(File.Exists(node.ConflistPath)));
        output.WriteLine($"podCIDR set -> conflist written: {written.TotalMilliseconds:0} ms");
        Assert.Equal(200, node.Healthz(AgentProcess.HealthzPort));
        Assert.Contains("10.244.1.0/24", await File.ReadAllTextAsync(node.ConflistPath));
        Assert.DoesNotContain("fd00", await File.ReadAllTextAsync(node.ConflistPath));

        cluster.Api.UpdateNode(node.Name, podCidrs: ["10.245.1.0/24", SimulatedCluster.PodCidrV6(1)]);
        await cluster.WaitFor("the rewritten conflist", async () => (await File.ReadAllTextAsync(node.ConflistPath)).Contains("10.245.1.0/24"));
        var text = await File.ReadAllTextAsync(node.ConflistPath);
        Assert.DoesNotContain("10.244.1.0/24", text);
        Assert.Contains(SimulatedCluster.PodCidrV6(1), text);
        Assert.Empty(Directory.GetFiles(node.ConfDir, ".*")); // no temp file left behind
        Assert.Contains("ip saddr 10.245.1.0/24", await node.Ruleset());
    }

    [Fact]
    public async Task The_agent_refuses_a_binary_the_nodes_glibc_cannot_run_and_installs_nothing()
    {
        var cluster = await SimulatedCluster.Create();
        await using var _ = cluster;
        var node = await cluster.AddNodeNamespace(1);
        cluster.Register(node);
        // A "libc" that defines versions only up to GLIBC_2.17 stands in for an old node. podbridge and podbridge-ipam
        // are static executables and run there; Debian's portmap is dynamically linked against GLIBC_2.34 and cannot.
        var oldLibc = Path.Combine(Path.GetDirectoryName(node.BinDir)!, "libc.so.6");
        await File.WriteAllBytesAsync(oldLibc, [.. "\0GLIBC_2.2.5\0GLIBC_2.17\0"u8]);
        var source = RunScope.NewTempDir("node-source");
        try
        {
            foreach (var name in new[] { "podbridge", "podbridge-ipam" })
                File.Copy(Binaries.Require(Binaries.PodBridgeDir, name), Path.Combine(source, name));
            File.Copy(Binaries.Require(Binaries.ReferenceDir, "portmap"), Path.Combine(source, "portmap"));
            var agent = cluster.StartAgent(node, "--source-dir", source, "--node-libc", oldLibc);
            await cluster.WaitFor("the agent to exit", () => Task.FromResult(agent.HasExited));
            Assert.Equal(1, agent.ExitCode);
            var log = agent.ReadLog();
            Assert.Contains("refusing to install portmap", log);
            Assert.Contains("node has glibc 2.17", log);
            Assert.DoesNotContain("refusing to install podbridge", log);
            Assert.Empty(Directory.GetFiles(node.BinDir)); // half an installation is worse than none
            Assert.False(File.Exists(node.ConflistPath));
        }
        finally
        {
            Directory.Delete(source, recursive: true);
        }
    }
}
