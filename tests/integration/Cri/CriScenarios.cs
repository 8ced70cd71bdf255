using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using Grpc.Core;
using PodBridge.Cri;
using PodBridge.Cri.V1;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests.Cri;

/// <summary>
/// kubelet's path: pod sandboxes started and torn down through a real containerd's CRI (gRPC on its unix socket),
/// with podbridge as the CNI network. containerd drives the plugins with its own habits — K8S_POD_* CNI_ARGS,
/// a loopback network next to ours, capitalised portMappings for portmap, DEL on Stop and on Remove — and
/// reports our result back as the pod's IPs. Each scenario checks the CRI answers, the kernel and the lease store.
/// Every pod carries a label unique to its test, so ListPodSandbox assertions only see that test's pods.
/// </summary>
[Trait("Category", "Cri")]
public sealed class CriScenarios(CriFixture fixture, ITestOutputHelper output) : IClassFixture<CriFixture>
{
    private const string TestLabel = "podbridge.test/case";
    private readonly string _case = RunScope.NewName();
    private RuntimeService.RuntimeServiceClient Cri => fixture.Containerd.Runtime;

    [Fact]
    public async Task RunPodSandbox_reports_our_lease_as_the_pod_ip_and_the_lease_names_the_pod()
    {
        var net = fixture.Networks[CriFixture.Single];
        var id = await RunPod(CriFixture.Single, "web-0", "shop");
        try
        {
            var status = (await Cri.Status(id)).Status;
            Assert.Equal(PodSandboxState.SandboxReady, status.State);
            var ip = status.Network.Ip;
            Assert.Empty(status.Network.AdditionalIps);

            var lease = Assert.Single(await IpamState.LeasesOf("podbridge-ipam", net, id));
            Assert.Equal(ip, lease.Ip);
            Assert.Equal("eth0", lease.IfName);
            var raw = await RawLease(net, id);
            Assert.Equal("shop", (string?)raw["podNamespace"]);
            Assert.Equal("web-0", (string?)raw["podName"]);

            using var ns = PodNetns.Alias(await Cri.NetnsPath(id));
            var addr = Assert.Single(await Kernel.GlobalAddresses(ns.Name, "eth0"));
            Assert.Equal($"{ip}/24", addr.Cidr);
            Assert.Contains(await Kernel.Routes(ns.Name, 4), r => r.Dst == "0.0.0.0/0" && r.Gateway == net.Gateway4);
            // containerd's loopback network ran too (CNI_IFNAME=lo): lo is up in the pod.
            Assert.True((await Kernel.Link(ns.Name, "lo"))!.IsUp);
            var hostVeth = Assert.Single(await Kernel.Links(null, master: net.Bridge));
            Assert.Equal("veth", hostVeth.Kind);
        }
        finally
        {
            await StopAndRemove(id);
        }
    }

    [Fact]
    public async Task Two_sandboxes_reach_each_other_and_a_hostPort_reaches_a_listener_in_the_sandbox()
    {
        var hostPort = FreeLoopbackPort();
        const int containerPort = 8080;
        var a = await RunPod(CriFixture.Single, "a", "default",
            new PortMapping { Protocol = Protocol.Tcp, ContainerPort = containerPort, HostPort = hostPort, HostIp = "127.0.0.1" });
        var b = await RunPod(CriFixture.Single, "b", "default");
        try
        {
            var ipA = (await Cri.Status(a)).Status.Network.Ip;
            var ipB = (await Cri.Status(b)).Status.Network.Ip;
            Assert.NotEqual(ipA, ipB);
            var pathA = await Cri.NetnsPath(a);
            using var nsA = PodNetns.Alias(pathA);
            using var nsB = PodNetns.Alias(await Cri.NetnsPath(b));
            (await Kernel.Ping(nsA.Name, ipB)).EnsureOk();
            (await Kernel.Ping(nsB.Name, ipA)).EnsureOk();

            // The node connects to 127.0.0.1:hostPort; portmap's DNAT (chained after podbridge, fed the
            // capitalised portMappings containerd sends) must carry it to the listener inside sandbox a.
            using var listener = PodNetns.ListenIn(pathA, containerPort);
            var accept = listener.AcceptAsync();
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, hostPort), cts.Token);
            using var server = await accept.WaitAsync(cts.Token);
            await server.SendAsync(Encoding.ASCII.GetBytes("hello from the pod"), cts.Token);
            var buffer = new byte[64];
            var n = await client.ReceiveAsync(buffer, cts.Token);
            Assert.Equal("hello from the pod", Encoding.ASCII.GetString(buffer, 0, n));
        }
        finally
        {
            await StopAndRemove(a);
            await StopAndRemove(b);
        }
        // portmap's DEL (run by containerd on Stop with the cached result) removed the pod's NAT rules.
        var nat = (await Sh.Run("iptables-save", "-t", "nat")).EnsureOk().Stdout;
        Assert.DoesNotContain(a, nat);
    }

    [Fact]
    public async Task A_dual_stack_sandbox_reports_both_families()
    {
        var net = fixture.Networks[CriFixture.Dual];
        var id = await RunPod(CriFixture.Dual, "dual", "default");
        try
        {
            var network = (await Cri.Status(id)).Status.Network;
            var ips = new[] { network.Ip }.Concat(network.AdditionalIps.Select(p => p.Ip)).Select(IPAddress.Parse).ToList();
            Assert.Equal(2, ips.Count);
            var v4 = Assert.Single(ips, i => i.AddressFamily == AddressFamily.InterNetwork);
            var v6 = Assert.Single(ips, i => i.AddressFamily == AddressFamily.InterNetworkV6);

            var leases = await IpamState.LeasesOf("podbridge-ipam", net, id);
            Assert.Equal(ips.Select(i => i.ToString()).Order(), leases.Select(l => Kernel.AddressOf(l.Ip)).Order());

            using var ns = PodNetns.Alias(await Cri.NetnsPath(id));
            var addrs = (await Kernel.GlobalAddresses(ns.Name, "eth0")).Select(a => Kernel.AddressOf(a.Local)).ToList();
            Assert.Contains(v4.ToString(), addrs);
            Assert.Contains(v6.ToString(), addrs);
        }
        finally
        {
            await StopAndRemove(id);
        }
    }

    [Fact]
    public async Task Stop_frees_the_lease_and_links_and_Remove_deletes_again_with_an_empty_netns()
    {
        var net = fixture.Networks[CriFixture.Single];
        var id = await RunPod(CriFixture.Single, "stopme", "default");
        try
        {
            var netnsPath = await Cri.NetnsPath(id);
            Assert.Single(await IpamState.LeasesOf("podbridge-ipam", net, id));
            Assert.Single(await Kernel.Links(null, master: net.Bridge));

            await Cri.Stop(id);
            Assert.Empty(await IpamState.LeasesOf("podbridge-ipam", net, id));
            Assert.True(await Kernel.Eventually(async () => (await Kernel.Links(null, master: net.Bridge)).Count == 0),
                "the pod's host veth is still on the bridge after StopPodSandbox");
            Assert.False(File.Exists(netnsPath), $"containerd left the pod netns {netnsPath}");
            Assert.Equal(PodSandboxState.SandboxNotready, (await Cri.Status(id)).Status.State);
            // Stop's DEL: CNI_NETNS = the pod netns, prevResult from libcni's cache.
            var stopDel = fixture.LogLines("DEL", id);
            Assert.Single(stopDel, l => l.Contains(" ok in ", StringComparison.Ordinal));
            Assert.Single(stopDel, l => l.Contains($"deleted eth0 in {netnsPath}", StringComparison.Ordinal));

            await Cri.Remove(id);
            var allDel = fixture.LogLines("DEL", id);
            foreach (var line in allDel) output.WriteLine(line);
            // Remove's DEL: containerd calls the plugins again with an empty CNI_NETNS and no prevResult. It must
            // succeed (or Remove fails) and find nothing left to delete in a namespace.
            Assert.Equal(2, allDel.Count(l => l.Contains(" ok in ", StringComparison.Ordinal)));
            Assert.DoesNotContain(allDel, l => l.Contains(" error ", StringComparison.Ordinal));
            Assert.Single(allDel, l => l.Contains("deleted eth0 in", StringComparison.Ordinal));
            Assert.Empty((await Cri.ListPodSandboxAsync(ListFilter())).Items);
            await Assert.ThrowsAsync<RpcException>(async () => await Cri.Status(id));
            await AssertNothingLeft(net, id);
            // RemovePodSandbox is idempotent (kubelet retries it): a second one succeeds.
            await Cri.Remove(id);
        }
        finally
        {
            await StopAndRemove(id);
        }
    }

    [Fact]
    public async Task A_three_address_pool_serves_two_rounds_and_the_fourth_pod_fails_with_our_message()
    {
        var net = fixture.Networks[CriFixture.Pool3];
        var pool = new[] { net.V4(10), net.V4(11), net.V4(12) };
        for (var round = 0; round < 2; round++)
        {
            var ids = new List<string>();
            try
            {
                for (var i = 0; i < 3; i++) ids.Add(await RunPod(CriFixture.Pool3, $"r{round}-{i}", "default"));
                var ips = new List<string>();
                foreach (var id in ids) ips.Add((await Cri.Status(id)).Status.Network.Ip);
                Assert.Equal(pool, ips.Order());
                Assert.Equal(3, (await IpamState.Leases("podbridge-ipam", net)).Count);

                if (round == 1)
                {
                    var e = await Assert.ThrowsAsync<RpcException>(() => RunPod(CriFixture.Pool3, "fourth", "default"));
                    output.WriteLine(e.Status.Detail);
                    Assert.Contains("no free address", e.Status.Detail);
                    Assert.Contains(net.Name, e.Status.Detail);
                    // The failed sandbox left nothing: three ports, three leases, no fourth pod listed.
                    Assert.Equal(3, (await Kernel.Links(null, master: net.Bridge)).Count);
                    Assert.Equal(3, (await IpamState.Leases("podbridge-ipam", net)).Count);
                    Assert.Equal(3, (await Cri.ListPodSandboxAsync(ListFilter())).Items.Count);
                }
            }
            finally
            {
                foreach (var id in ids) await StopAndRemove(id);
            }
            Assert.Empty(await IpamState.Leases("podbridge-ipam", net));
            Assert.True(await Kernel.Eventually(async () => (await Kernel.Links(null, master: net.Bridge)).Count == 0));
        }
    }

    [Fact]
    public async Task Sandboxes_survive_a_containerd_SIGKILL_and_Stop_Remove_clean_up_after_the_restart()
    {
        var net = fixture.Networks[CriFixture.Single];
        var ids = new List<string> { await RunPod(CriFixture.Single, "k0", "default"), await RunPod(CriFixture.Single, "k1", "default") };
        try
        {
            var before = new List<string>();
            foreach (var id in ids) before.Add((await Cri.Status(id)).Status.Network.Ip);

            await fixture.Containerd.Kill();
            await fixture.Containerd.Restart();

            var after = new List<string>();
            foreach (var id in ids)
            {
                var status = (await Cri.Status(id)).Status;
                Assert.Equal(PodSandboxState.SandboxReady, status.State);
                after.Add(status.Network.Ip);
            }
            Assert.Equal(before, after);
            Assert.Equal(before.Order(), (await IpamState.Leases("podbridge-ipam", net)).Where(l => ids.Contains(l.ContainerId)).Select(l => l.Ip).Order());

            foreach (var id in ids) await StopAndRemove(id);
            foreach (var id in ids) await AssertNothingLeft(net, id);
        }
        finally
        {
            foreach (var id in ids) await StopAndRemove(id);
        }
    }

    [Fact]
    public async Task A_sandbox_whose_netns_vanished_stops_and_its_address_is_reused()
    {
        var net = fixture.Networks[CriFixture.Pool1];
        var id = await RunPod(CriFixture.Pool1, "reboot", "default");
        string? second = null;
        try
        {
            var ip = (await Cri.Status(id)).Status.Network.Ip;
            Assert.Equal(net.V4(10), ip);

            // As after a node reboot: the sandbox's processes and its netns are gone, containerd was not told.
            var info = JsonNode.Parse((await Cri.Status(id, verbose: true)).Info["info"])!;
            var netnsPath = await Cri.NetnsPath(id);
            (await Sh.Run("umount", netnsPath)).EnsureOk();
            File.Delete(netnsPath);
            (await Sh.Run("kill", "-KILL", ((int)info["pid"]!).ToString(System.Globalization.CultureInfo.InvariantCulture))).EnsureOk();
            Assert.True(await Kernel.Eventually(async () => (await Kernel.Links(null, master: net.Bridge)).Count == 0),
                "the veth should have died with its netns");

            await Cri.Stop(id);
            await Cri.Remove(id);
            Assert.Empty(await IpamState.Leases("podbridge-ipam", net));

            // The one address of the pool is free again.
            second = await RunPod(CriFixture.Pool1, "after-reboot", "default");
            Assert.Equal(ip, (await Cri.Status(second)).Status.Network.Ip);
        }
        finally
        {
            await StopAndRemove(id);
            if (second is not null) await StopAndRemove(second);
        }
    }

    private async Task<string> RunPod(string handler, string name, string ns, params PortMapping[] ports)
    {
        var config = Pods.SandboxConfig(name, ns, Guid.NewGuid().ToString(), fixture.Containerd.CgroupParent, ports);
        config.Labels[TestLabel] = _case;
        try
        {
            return await Cri.Run(config, handler);
        }
        catch (RpcException e) when (e.StatusCode != StatusCode.Unknown)
        {
            throw new RpcException(e.Status, $"{e.Message}\ncontainerd log:\n{fixture.Containerd.LogTail()}");
        }
    }

    private ListPodSandboxRequest ListFilter() =>
        new() { Filter = new PodSandboxFilter { LabelSelector = { [TestLabel] = _case } } };

    /// <summary>Stop + Remove, tolerating a sandbox already gone (kubelet's retries rely on both being idempotent).</summary>
    private async Task StopAndRemove(string id)
    {
        try
        {
            await Cri.Stop(id);
            await Cri.Remove(id);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
        }
    }

    private async Task AssertNothingLeft(TestNetwork net, string id)
    {
        Assert.Empty(await IpamState.LeasesOf("podbridge-ipam", net, id));
        Assert.True(await Kernel.Eventually(async () => (await Kernel.Links(null, master: net.Bridge)).Count == 0),
            "a host veth is still on the bridge");
        var netns = Directory.Exists(fixture.Containerd.NetnsDir) ? Directory.GetFiles(fixture.Containerd.NetnsDir) : [];
        Assert.Empty(netns);
        // libcni's result cache (containerd's go-cni keeps it in /var/lib/cni): no entry for this sandbox.
        var cache = Directory.Exists("/var/lib/cni/results") ? Directory.GetFiles("/var/lib/cni/results", $"*{id}*") : [];
        Assert.Empty(cache);
        Assert.DoesNotContain((await Cri.ListPodSandboxAsync(new ListPodSandboxRequest())).Items, s => s.Id == id);
    }

    private static async Task<JsonNode> RawLease(TestNetwork net, string containerId)
    {
        var r = (await Sh.Run(Binaries.PodBridgeIpam, "leases", "--data-dir", net.DataDir)).EnsureOk();
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!)
            .Single(n => (string?)n["containerID"] == containerId);
    }

    /// <summary>A TCP port nothing on 127.0.0.1 uses right now (other test runs share this machine).</summary>
    private static int FreeLoopbackPort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }
}
