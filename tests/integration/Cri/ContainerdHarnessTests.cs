using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using PodBridge.Cri;
using PodBridge.Cri.V1;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Cri;

/// <summary>
/// The CRI harness's own promise: what a killed test run leaves of its containerd — the daemon, shims, running
/// sandboxes, their netns and rootfs mounts, cgroups, shim sockets, portmap's NAT rules — is removed by the next
/// run's sweep (<see cref="Containerd.ForceCleanup"/>), which runs without containerd's help.
/// </summary>
[Trait("Category", "Cri")]
public sealed class ContainerdHarnessTests
{
    [Fact]
    public async Task ForceCleanup_removes_everything_a_killed_run_left_behind()
    {
        using var net = await TestNetwork.Create();
        var bridge = net.Config(PluginFlavor.PodBridge);
        bridge.Remove("cniVersion");
        bridge.Remove("name");
        var conflist = new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = net.Name,
            ["plugins"] = new JsonArray(bridge,
                new JsonObject { ["type"] = "portmap", ["capabilities"] = new JsonObject { ["portMappings"] = true } }),
        };
        var bins = CriFixture.PluginBinaries();
        var dir = RunScope.NewTempDir("containerd");
        var containerd = await Containerd.Start(new ContainerdOptions(dir, bins, [new CriNetwork("net", conflist.ToJsonString())]));
        try
        {
            var config = Pods.SandboxConfig("crashed", "default", Guid.NewGuid().ToString(), containerd.CgroupParent,
                [new PortMapping { Protocol = Protocol.Tcp, ContainerPort = 80, HostPort = FreeLoopbackPort(), HostIp = "127.0.0.1" }]);
            var id = await containerd.Runtime.Run(config, "net");
            var info = JsonNode.Parse((await containerd.Runtime.Status(id, verbose: true)).Info["info"])!;
            var sandboxPid = (int)info["pid"]!;
            var shimSocket = Path.Combine("/run/containerd/s",
                Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{containerd.SocketPath}/k8s.io/{id}"))));
            // What the sweep has to remove, present before the "crash".
            Assert.True(File.Exists(shimSocket), $"no shim socket {shimSocket}");
            Assert.Contains(id, await Nat());
            Assert.Single(await Kernel.Links(null, master: net.Bridge));
            Assert.NotEmpty(MountsUnder(dir));

            // The test run dies: containerd is SIGKILLed, nobody calls Stop/Remove, shims and the sandbox live on.
            await containerd.Kill();
            Assert.True(Alive(sandboxPid));

            Containerd.ForceCleanup(dir);

            Assert.Empty(ProcessesMentioning(dir));
            Assert.True(await Kernel.Eventually(() => Task.FromResult(!Alive(sandboxPid))), $"sandbox process {sandboxPid} survived");
            Assert.Empty(MountsUnder(dir));
            Assert.False(Directory.Exists(dir));
            Assert.False(File.Exists(shimSocket));
            Assert.DoesNotContain(id, await Nat());
            Assert.False(Directory.Exists(Path.Combine("/sys/fs/cgroup/memory", containerd.CgroupParent.TrimStart('/'))));
            // The pod's netns went with its last process and bind mount, and the veth with it.
            Assert.True(await Kernel.Eventually(async () => (await Kernel.Links(null, master: net.Bridge)).Count == 0));
        }
        finally
        {
            await containerd.DisposeAsync();
        }
        // portmap's shared host chains (and ip6 nat table) this process created are gone with its last containerd.
        Assert.Empty(containerd.HostNatLeftOver);
    }

    private static async Task<string> Nat() => (await Sh.Run("iptables-save", "-t", "nat")).EnsureOk().Stdout;

    private static List<string> MountsUnder(string dir) =>
        File.ReadLines("/proc/self/mountinfo").Select(l => l.Split(' ')[4]).Where(m => m.StartsWith(dir + "/", StringComparison.Ordinal)).ToList();

    private static List<int> ProcessesMentioning(string dir)
    {
        var pids = new List<int>();
        foreach (var p in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(p), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(p, "cmdline")).Contains(dir, StringComparison.Ordinal)) pids.Add(pid);
            }
            catch (IOException) { }
        }
        return pids;
    }

    /// <summary>Running (a zombie waiting for its reaper counts as gone).</summary>
    private static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException) { return false; }
    }

    private static int FreeLoopbackPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
