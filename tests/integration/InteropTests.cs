using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// Drop-in both ways: the reference bridge with podbridge-ipam as its IPAM (found through CNI_PATH), and
/// podbridge delegating to the reference host-local.
/// </summary>
public sealed class InteropTests
{
    /// <summary>Reference bridge + our IPAM: what an operator gets by changing only ipam.type.</summary>
    private static readonly PluginFlavor ReferenceBridgeWithPodBridgeIpam = new(
        "reference bridge + podbridge-ipam", () => Binaries.ReferenceBridge, "bridge", "podbridge-ipam",
        () => Binaries.PodBridgeDir, ["0.3.1", "0.4.0", "1.0.0"], IsPodBridge: false);

    /// <summary>podbridge + host-local: the embedded IPAM is bypassed, host-local runs from CNI_PATH.</summary>
    private static readonly PluginFlavor PodBridgeWithHostLocal = new(
        "podbridge + host-local", () => Binaries.PodBridge, "podbridge", "host-local",
        () => Binaries.ReferenceDir, ["0.3.1", "0.4.0", "1.0.0", "1.1.0"], IsPodBridge: true);

    private static JsonObject OneAddress(TestNetwork net, PluginFlavor flavor)
    {
        var conf = net.Config(flavor);
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(11))));
        return conf;
    }

    [Fact]
    public async Task ReferenceBridge_WithPodBridgeIpam()
    {
        _ = Binaries.PodBridgeIpam;   // fail clearly when it has not been published
        var flavor = ReferenceBridgeWithPodBridgeIpam;
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        using var c = await TestPod.Create();
        var cni = new CniDriver(flavor, net);
        var conf = OneAddress(net, flavor);
        conf["isDefaultGateway"] = true;

        var ra = (await cni.Add(a, conf)).AssertSuccess().Result;
        var va = await Expect.ResultMatchesKernel(ra, "1.0.0", net, a, flavor, defaultRoute: true);
        Assert.Equal(net.V4(10), va.V4);
        var rb = (await cni.Add(b, conf)).AssertSuccess().Result;
        Assert.Equal(net.V4(11), Kernel.AddressOf((string)rb["ips"]![0]!["address"]!));
        (await Kernel.Ping(a.NetNs.Name, net.Gateway4)).EnsureOk();
        (await Kernel.Ping(a.NetNs.Name, net.V4(11))).EnsureOk();
        (await cni.Check(a, conf, ra)).AssertSilentSuccess();

        (await cni.Add(c, conf)).AssertError();   // the two addresses are taken
        (await cni.Del(c, conf)).AssertSilentSuccess();
        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        var rc = (await cni.Add(c, conf)).AssertSuccess().Result;
        Assert.Equal(net.V4(10), Kernel.AddressOf((string)rc["ips"]![0]!["address"]!));
    }

    [Fact]
    public async Task PodBridge_DelegatingToHostLocal()
    {
        var flavor = PodBridgeWithHostLocal;
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(flavor, net);
        var conf = OneAddress(net, flavor);
        conf["isDefaultGateway"] = true;

        var ra = (await cni.Add(a, conf)).AssertSuccess().Result;
        var va = await Expect.ResultMatchesKernel(ra, "1.0.0", net, a, flavor, defaultRoute: true);
        // host-local's own lease file proves it, not the embedded IPAM, allocated.
        var leaseFile = Path.Combine(net.DataDir, net.Name, va.V4);
        Assert.True(File.Exists(leaseFile), $"host-local lease {leaseFile} missing");
        Assert.Contains(a.ContainerId, await File.ReadAllTextAsync(leaseFile));

        (await cni.Add(b, conf)).AssertSuccess();
        (await Kernel.Ping(a.NetNs.Name, net.V4(11))).EnsureOk();
        (await cni.Check(a, conf, ra)).AssertSilentSuccess();

        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        Assert.False(File.Exists(leaseFile), "DEL must release the host-local lease");
        await Expect.Deleted(net, a, va.HostVeth);
    }
}
