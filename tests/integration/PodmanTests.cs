using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// A real runtime: podman 4 with its CNI backend (libcni) runs a busybox container on the network, the container
/// gets its address and reaches the gateway; removing the container and the network leaves nothing behind.
/// The reference run shows the podman setup itself works on this machine.
/// </summary>
public sealed class PodmanTests
{
    [Fact]
    public Task Podman_OnReferenceBridge() => RunContainer(PluginFlavor.Reference);

    [Fact]
    public Task Podman_OnPodBridge() => RunContainer(PluginFlavor.PodBridge);

    private static async Task RunContainer(PluginFlavor flavor)
    {
        _ = flavor.BridgeBinary();   // fail clearly when it is missing
        using var net = await TestNetwork.Create();
        using var podman = await PodmanEnv.Create(flavor.CniPath(), Binaries.ReferenceDir);
        var conf = net.Config(flavor);
        conf["isDefaultGateway"] = true;
        await podman.AddNetwork(net.Name, conf);
        var container = RunScope.NewName();
        var networkRemoved = false;
        try
        {
            (await podman.Podman("run", "-d", "--name", container, "--network", net.Name, "--cap-add", "NET_RAW",
                "--rootfs", podman.RootFs, "/bin/sleep", "300")).EnsureOk();

            var pid = (await podman.Podman("inspect", "--format", "{{.State.Pid}}", container)).EnsureOk().Stdout.Trim();
            var kernelJson = (await Sh.Run("nsenter", "-t", pid, "-n", "ip", "-j", "addr", "show", "dev", "eth0")).EnsureOk().Stdout;
            var addr = JsonNode.Parse(kernelJson)![0]!["addr_info"]!.AsArray()
                .Select(a => (Family: (string)a!["family"]!, Local: (string)a["local"]!, Len: (int)a["prefixlen"]!))
                .Single(a => a.Family == "inet");
            Assert.StartsWith($"10.250.{net.Octet}.", addr.Local);
            Assert.Equal(24, addr.Len);

            var reported = (await podman.Podman("inspect", "--format", $"{{{{(index .NetworkSettings.Networks \"{net.Name}\").IPAddress}}}}", container)).EnsureOk().Stdout.Trim();
            Assert.Equal(addr.Local, reported);

            // From inside, with the container's own busybox.
            var inside = (await podman.Podman("exec", container, "ip", "addr", "show", "eth0")).EnsureOk().Stdout;
            Assert.Contains($"inet {addr.Local}/24", inside);
            (await podman.Podman("exec", container, "ping", "-c1", "-W2", net.Gateway4)).EnsureOk();
            (await Sh.Run("ping", "-c1", "-W2", addr.Local)).EnsureOk();
            Assert.Single(await Kernel.BridgePorts(null, net.Bridge));

            (await podman.Podman("rm", "--force", "--time", "0", container)).EnsureOk();
            Assert.True(await Kernel.Eventually(async () => (await Kernel.BridgePorts(null, net.Bridge)).Count == 0),
                "the host veth outlived `podman rm`");
            (await podman.Podman("network", "rm", "--force", net.Name)).EnsureOk();
            networkRemoved = true;
            Assert.False(File.Exists(Path.Combine(podman.NetworkDir, $"{net.Name}.conflist")));
        }
        finally
        {
            await podman.Podman("rm", "--force", "--time", "0", container);
            if (!networkRemoved) await podman.Podman("network", "rm", "--force", net.Name);
        }
    }
}
