using System.Security.Cryptography;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3: an address or MAC the runtime asks for is the one the pod gets, exactly; a request that cannot be
/// honoured (taken, the gateway, outside the range) is code 103 and leaves nothing behind.
/// </summary>
public sealed class StaticAddressTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    /// <summary>What containerd sends, plus the IP= and MAC= a runtime uses for a static pod.</summary>
    private static string K8sArgs(string podName, string extra) =>
        $"IgnoreUnknown=1;K8S_POD_NAMESPACE=reliability;K8S_POD_NAME={podName};K8S_POD_INFRA_CONTAINER_ID={podName}-infra;" +
        $"K8S_POD_UID={Guid.NewGuid()};{extra}";

    [Fact]
    public async Task CniArgsIpAndMac_AreExact_AndUnservableRequestsAre103_LeavingNothing()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        var ip = net.V4(77);
        var mac = RandomMac();

        var ra = (await cni.Add(a, conf, K8sArgs("web-0", $"IP={ip};MAC={mac}"))).AssertSuccess().Result;
        var va = await Expect.ResultMatchesKernel(ra, "1.0.0", net, a, Flavor);
        Assert.Equal(ip, va.V4);
        Assert.Equal(mac, va.PodMac);
        // The kernel, not only the result: exactly that address (no second one) and that MAC.
        Assert.Equal($"{ip}/24", Assert.Single(await Kernel.GlobalAddresses(a.NetNs.Name, a.IfName)).Cidr);
        Assert.Equal(mac, (await Kernel.Link(a.NetNs.Name, a.IfName))!.Mac);
        var lease = Assert.Single(await LeaseList.Of(net));
        Assert.Equal((ip, a.ContainerId, a.IfName, "reliability", "web-0"), (lease.Ip, lease.ContainerId, lease.IfName, lease.PodNamespace, lease.PodName));

        var portsBefore = await KernelView.BridgePortNames(net);
        Assert.Equal([va.HostVeth], portsBefore);
        var refused = new (string Why, string Ip)[]
        {
            ("taken by another pod", ip),
            ("the gateway", net.Gateway4),
            ("outside the range", "10.251.0.77"),
        };
        foreach (var (why, request) in refused)
        {
            var add = await cni.Add(b, conf, K8sArgs("web-1", $"IP={request}"));
            try
            {
                add.AssertError(103, request);
                await Must.HaveLeftNothing(net, Attachment.Of(b), portsBefore);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"requesting {request} ({why}):\n{e.Message}");
            }
        }

        // The holder of the contested address is untouched.
        Assert.Equal(lease, Assert.Single(await LeaseList.Of(net)));
        (await cni.Check(a, conf, ra)).AssertSilentSuccess();
        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        Assert.Empty(await LeaseList.Of(net));
    }

    /// <summary>CONVENTIONS.md: runtimeConfig.mac beats args.cni.mac beats CNI_ARGS MAC=.</summary>
    [Fact]
    public async Task MacPriority_RuntimeConfig_Then_ArgsCni_Then_CniArgs()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        var pods = await TestPod.CreateMany(3);
        try
        {
            var cni = new CniDriver(Flavor, net);
            var macs = Enumerable.Range(0, 7).Select(_ => RandomMac()).Distinct().ToArray();
            Assert.Equal(7, macs.Length);

            // (sources given, expected winner)
            var cases = new (TestPod Pod, string? Runtime, string? ArgsCni, string CniArgs, string Expected)[]
            {
                (pods[0], null, null, macs[0], macs[0]),
                (pods[1], null, macs[1], macs[2], macs[1]),
                (pods[2], macs[3], macs[4], macs[5], macs[3]),
            };
            foreach (var c in cases)
            {
                var conf = net.Config(Flavor);
                conf["capabilities"] = new JsonObject { ["mac"] = true };
                if (c.Runtime is not null) conf["runtimeConfig"] = new JsonObject { ["mac"] = c.Runtime };
                if (c.ArgsCni is not null) conf["args"] = new JsonObject { ["cni"] = new JsonObject { ["mac"] = c.ArgsCni } };
                var r = (await cni.Add(c.Pod, conf, K8sArgs("mac", $"MAC={c.CniArgs}"))).AssertSuccess().Result;
                var view = await Expect.ResultMatchesKernel(r, "1.0.0", net, c.Pod, Flavor);
                Assert.Equal(c.Expected, view.PodMac);
                Assert.Equal(c.Expected, (await Kernel.Link(c.Pod.NetNs.Name, c.Pod.IfName))!.Mac);
                (await cni.Del(c.Pod, conf, r)).AssertSilentSuccess();
            }
            Assert.Empty(await LeaseList.Of(net));
        }
        finally
        {
            foreach (var p in pods) p.Dispose();
        }
    }

    /// <summary>A locally administered unicast MAC, lowercase, as the kernel prints it.</summary>
    private static string RandomMac()
    {
        var b = RandomNumberGenerator.GetBytes(6);
        b[0] = (byte)((b[0] & 0xfc) | 0x02);
        return string.Join(':', b.Select(x => x.ToString("x2")));
    }
}
