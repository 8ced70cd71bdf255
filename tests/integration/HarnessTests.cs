using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>The harness itself: what it creates it removes, and its probes can say no.</summary>
public sealed class HarnessTests
{
    [Fact]
    public async Task TestNetNs_IsCreatedAndDeleted()
    {
        string name;
        using (var ns = await TestNetNs.Create())
        {
            name = ns.Name;
            Assert.StartsWith(RunScope.Prefix, name);
            Assert.True(File.Exists(ns.Path));
        }
        Assert.DoesNotContain(name, (await Sh.Run("ip", "netns", "list")).Stdout);
    }

    [Fact]
    public async Task TestNetwork_DisposeRemovesBridgePortsAndDataDir()
    {
        var net = await TestNetwork.Create();
        string port;
        using (var ns = await TestNetNs.Create())
        {
            (await Sh.Ip(null, "link", "add", net.Bridge, "type", "bridge")).EnsureOk();
            port = RunScope.NewName();
            // A port not named with the run prefix, like a plugin's host veth; its peer sits in ns.
            (await Sh.Ip(null, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)).EnsureOk();
            (await Sh.Ip(null, "link", "set", port, "master", net.Bridge)).EnsureOk();
            Assert.Single(await Kernel.BridgePorts(null, net.Bridge));
            net.Dispose();
            Assert.False(await Kernel.LinkExists(null, net.Bridge));
            Assert.False(await Kernel.LinkExists(null, port));
            Assert.False(await Kernel.LinkExists(ns.Name, "eth0"));
        }
        Assert.False(Directory.Exists(net.DataDir));
    }

    [Fact]
    public async Task IsolatedNode_DisposeTakesEverythingWithIt()
    {
        var net = await TestNetwork.Create(isolatedNode: true);
        (await Sh.Ip(net.NodeNs, "link", "add", net.Bridge, "type", "bridge")).EnsureOk();
        Assert.False(await Kernel.LinkExists(null, net.Bridge), "the bridge must live in the node netns");
        net.Dispose();
        Assert.DoesNotContain(net.Node!.Name, (await Sh.Run("ip", "netns", "list")).Stdout);
    }

    [Fact]
    public async Task LastResortCleanup_DeletesOnlyWhatCarriesTheGivenPrefix()
    {
        // A sub-prefix of this run's names, so the sweep cannot touch any other test's objects.
        var prefix = RunScope.NewName();
        (await Sh.Run("ip", "netns", "add", prefix + "x")).EnsureOk();
        (await Sh.Ip(null, "link", "add", prefix + "b", "type", "bridge")).EnsureOk();
        using var bystander = await TestNetNs.Create();

        RunScope.CleanupRun(prefix, Environment.ProcessId);

        Assert.DoesNotContain(prefix + "x", (await Sh.Run("ip", "netns", "list")).Stdout);
        Assert.False(await Kernel.LinkExists(null, prefix + "b"));
        Assert.Contains(bystander.Name, (await Sh.Run("ip", "netns", "list")).Stdout);
    }

    [Fact]
    public async Task Ping_FailsWithoutARoute()
    {
        using var ns = await TestNetNs.Create();
        Assert.False((await Kernel.Ping(ns.Name, "10.250.255.254", attempts: 1)).Ok);
        Assert.True((await Kernel.Ping(ns.Name, "127.0.0.1", attempts: 1)).Ok);
    }

    [Fact]
    public async Task PluginRunner_ExportsAllSixVariables_AndUnsetRemovesThem()
    {
        // /usr/bin/env as the "plugin" shows the environment it was given.
        var outcome = await PluginRunner.Run("/usr/bin/env", new CniCall("ADD") { ContainerId = "x", Unset = ["CNI_ARGS"] });
        outcome.AssertSuccess();
        var lines = outcome.Stdout.Split('\n');
        Assert.Contains("CNI_COMMAND=ADD", lines);
        Assert.Contains("CNI_CONTAINERID=x", lines);
        Assert.Contains("CNI_NETNS=", lines);
        Assert.Contains("CNI_PATH=", lines);
        Assert.DoesNotContain(lines, l => l.StartsWith("CNI_ARGS=", StringComparison.Ordinal));
    }
}
