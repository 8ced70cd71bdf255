using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests;

/// <summary>
/// Scenarios every drop-in bridge + IPAM must pass. <see cref="ReferencePluginTests"/> runs them on the reference
/// plugins (proving the harness and the assertions on a known-good implementation), <see cref="PodBridgeTests"/>
/// on podbridge. Where the reference is known to fall short (CNI.md [Q]), the stricter check applies to podbridge only.
/// </summary>
public abstract class BridgeScenarios
{
    protected abstract PluginFlavor Flavor { get; }

    protected static readonly string[] AllVersions = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    /// <summary>A config whose IPAM hands out exactly one address (10.250.X.10): proves release by re-adding.</summary>
    protected JsonObject OneAddressConfig(TestNetwork net, string version = "1.0.0")
    {
        var conf = net.Config(Flavor, version);
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(10))));
        return conf;
    }

    /// <summary>ADD that must succeed; returns the result object.</summary>
    protected static async Task<JsonObject> AddOk(CniDriver cni, TestPod pod, JsonObject conf) =>
        (await cni.Add(pod, conf)).AssertSuccess().Result;

    protected static string FirstV4(JsonObject result) =>
        Kernel.AddressOf((string)result["ips"]!.AsArray().First(i => !((string)i!["address"]!).Contains(':'))!["address"]!);

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public async Task Add_Check_Del_KernelMatchesResult(string version)
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, version);
        conf["isDefaultGateway"] = true;

        var add = await cni.Add(pod, conf);
        if (!Flavor.Supports(version))
        {
            add.AssertError(1);
            Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName), "a rejected ADD must not create the pod iface");
            return;
        }
        add.AssertSuccess();
        var view = await Expect.ResultMatchesKernel(add.Result, version, net, pod, Flavor, defaultRoute: true);

        var check = await cni.Check(pod, conf, add.Result);
        if (Expect.IsPre100(version) && version != "0.4.0") check.AssertError(1);
        else check.AssertSilentSuccess();

        (await cni.Del(pod, conf, add.Result)).AssertSilentSuccess();
        await Expect.Deleted(net, pod, view.HostVeth);
    }

    [Fact]
    public async Task TwoPods_PingEachOtherAndTheGateway()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);

        var ra = await AddOk(cni, a, conf);
        var rb = await AddOk(cni, b, conf);
        var ipA = FirstV4(ra);
        var ipB = FirstV4(rb);
        Assert.NotEqual(ipA, ipB);

        (await Kernel.Ping(a.NetNs.Name, ipB)).EnsureOk();
        (await Kernel.Ping(b.NetNs.Name, ipA)).EnsureOk();
        (await Kernel.Ping(a.NetNs.Name, net.Gateway4)).EnsureOk();

        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        Assert.False((await Kernel.Ping(b.NetNs.Name, ipA, attempts: 1)).Ok, $"{ipA} must be unreachable after its DEL");
        (await cni.Del(b, conf, rb)).AssertSilentSuccess();
    }

    [Fact]
    public async Task WithoutGatewayFlags_PodsShareL2Only()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        conf["isGateway"] = false;

        var add = (await cni.Add(a, conf)).AssertSuccess();
        await Expect.ResultMatchesKernel(add.Result, "1.0.0", net, a, Flavor, isGateway: false, defaultRoute: false);
        var rb = await AddOk(cni, b, conf);
        (await Kernel.Ping(a.NetNs.Name, FirstV4(rb))).EnsureOk();
        Assert.False((await Kernel.Ping(a.NetNs.Name, net.Gateway4, attempts: 1)).Ok, "no gateway address without isGateway");
    }

    [Fact]
    public async Task Mtu_And_HairpinMode_AreApplied()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        conf["mtu"] = 1400;
        conf["hairpinMode"] = true;

        var add = (await cni.Add(pod, conf)).AssertSuccess();
        var view = await Expect.ResultMatchesKernel(add.Result, "1.0.0", net, pod, Flavor);
        Assert.Equal(1400, (await Kernel.Link(pod.NetNs.Name, pod.IfName))!.Mtu);
        var host = (await Kernel.Link(net.NodeNs, view.HostVeth))!;
        Assert.Equal(1400, host.Mtu);
        Assert.True(host.Hairpin, $"hairpin must be on for port {view.HostVeth}");
        var port = Assert.Single(await Kernel.BridgePorts(net.NodeNs, net.Bridge));
        Assert.True(port.Hairpin);
        Assert.Equal(1400, (await Kernel.Link(net.NodeNs, net.Bridge))!.Mtu);
    }

    [Fact]
    public async Task PromiscMode_SetsTheBridgePromiscuous()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        conf["promiscMode"] = true;

        var view = await Expect.ResultMatchesKernel((await cni.Add(pod, conf)).AssertSuccess().Result, "1.0.0", net, pod, Flavor);
        Assert.True((await Kernel.Link(net.NodeNs, net.Bridge))!.Promiscuity > 0, "bridge must be promiscuous");
        Assert.False((await Kernel.Link(net.NodeNs, view.HostVeth))!.Hairpin, "hairpin stays off unless asked");
    }

    /// <summary>In a private node netns: IPv6 forwarding on this machine's namespace would change how it treats RAs.</summary>
    [Fact]
    public async Task DualStack_OneAddressPerFamily_BothFamiliesRoute()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, dualStack: true);
        conf["isDefaultGateway"] = true;

        var ra = (await cni.Add(a, conf)).AssertSuccess().Result;
        var va = await Expect.ResultMatchesKernel(ra, "1.0.0", net, a, Flavor, dualStack: true, defaultRoute: true);
        var rb = (await cni.Add(b, conf)).AssertSuccess().Result;
        var vb = await Expect.ResultMatchesKernel(rb, "1.0.0", net, b, Flavor, dualStack: true, defaultRoute: true);

        (await Kernel.Ping(a.NetNs.Name, vb.V6, attempts: 5)).EnsureOk();
        (await Kernel.Ping(b.NetNs.Name, va.V4)).EnsureOk();
        Assert.Equal("1", await Kernel.Sysctl(net.NodeNs, "net.ipv4.ip_forward"));
        Assert.Equal("1", await Kernel.Sysctl(net.NodeNs, "net.ipv6.conf.all.forwarding"));

        (await cni.Check(a, conf, ra)).AssertSilentSuccess();
        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        await Expect.Deleted(net, a, va.HostVeth);
    }

    [Fact]
    public async Task IpamRoutes_AreInstalledInThePod()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        const string extra = "192.168.251.0/24";
        conf["ipam"]!["routes"] = new JsonArray(new JsonObject { ["dst"] = extra });

        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        Assert.Contains(result["routes"]!.AsArray(), r => (string?)r!["dst"] == extra);
        var routes = await Kernel.Routes(pod.NetNs.Name, 4);
        Assert.Contains(routes, r => r.Dst == extra && r.Gateway == net.Gateway4 && r.Dev == pod.IfName);
        // The reference's CHECK compares a gateway-less IPAM route with the kernel's (which has the gateway) and fails.
        if (Flavor.IsPodBridge) (await cni.Check(pod, conf, result)).AssertSilentSuccess();
    }

    /// <summary>containerd and CRI-O always send these; IgnoreUnknown=1 makes the unknown K8S_* keys legal.</summary>
    [Fact]
    public async Task KubernetesCniArgs_AreAccepted()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        var args = $"IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID={pod.ContainerId};K8S_POD_UID=5d8f2a4e-0c1b-4b7e-9a57-000000000001";
        var add = (await cni.Add(pod, conf, args)).AssertSuccess();
        await Expect.ResultMatchesKernel(add.Result, "1.0.0", net, pod, Flavor);
    }

    [Fact]
    public async Task RuntimeConfigMac_IsThePodMac()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        const string mac = "02:42:0a:fa:00:99";
        conf["capabilities"] = new JsonObject { ["mac"] = true };
        conf["runtimeConfig"] = new JsonObject { ["mac"] = mac };

        var add = (await cni.Add(pod, conf)).AssertSuccess();
        var view = await Expect.ResultMatchesKernel(add.Result, "1.0.0", net, pod, Flavor);
        Assert.Equal(mac, view.PodMac);
    }

    [Fact]
    public async Task ExhaustedRange_FailsCleanly_AndAReleasedAddressIsReused()
    {
        // A private node: the test compares the node's whole link list, which parallel tests would disturb.
        using var net = await TestNetwork.Create(isolatedNode: true);
        var pods = await TestPod.CreateMany(6);
        try
        {
            var cni = new CniDriver(Flavor, net);
            var conf = net.Config(Flavor);
            // A /29: .0 network, .1 gateway, .7 broadcast -> exactly .2-.6 for pods.
            var subnet = $"10.250.{net.Octet}.0/29";
            conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(subnet)));

            var results = new List<JsonObject>();
            for (var i = 0; i < 5; i++) results.Add(await AddOk(cni, pods[i], conf));
            var got = results.Select(FirstV4).ToList();
            Assert.Equal(Enumerable.Range(2, 5).Select(net.V4).Order(), got.Order());

            var linksBefore = (await Kernel.Links(net.NodeNs)).Select(l => l.Name).ToHashSet();
            var failed = await cni.Add(pods[5], conf);
            failed.AssertError(Flavor.IsPodBridge ? 102 : null);
            if (Flavor.IsPodBridge)
            {
                // CNI.md 2.13: nothing of a failed ADD survives (the reference leaks the veth here).
                failed.AssertError(102, net.Name);
                Assert.False(await Kernel.LinkExists(pods[5].NetNs.Name, pods[5].IfName), "failed ADD left the pod iface");
                var linksAfter = (await Kernel.Links(net.NodeNs)).Select(l => l.Name).ToHashSet();
                Assert.True(linksAfter.SetEquals(linksBefore), $"failed ADD left links: {string.Join(", ", linksAfter.Except(linksBefore))}");
                Assert.Equal(5, (await Kernel.BridgePorts(net.NodeNs, net.Bridge)).Count);
            }
            Assert.Empty(await IpamState.LeasesOf(Flavor.IpamType, net, pods[5].ContainerId));
            Assert.Equal(5, (await IpamState.Leases(Flavor.IpamType, net)).Count);

            // The runtime cleans a failed ADD with DEL; then a freed address goes to the next pod.
            (await cni.Del(pods[5], conf)).AssertSilentSuccess();
            (await cni.Del(pods[0], conf, results[0])).AssertSilentSuccess();
            var again = await AddOk(cni, pods[5], conf);
            Assert.Equal(got[0], FirstV4(again));
        }
        finally
        {
            foreach (var p in pods) p.Dispose();
        }
    }

    /// <summary>A second ADD for the same (container, ifname) fails and must not take the first ADD's lease with it.</summary>
    [Fact]
    public async Task DuplicateAdd_Fails_AndKeepsTheOriginalLease()
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = OneAddressConfig(net);

        var ra = await AddOk(cni, a, conf);
        Assert.Equal(net.V4(10), FirstV4(ra));
        (await cni.Add(a, conf)).AssertError(Flavor.IsPodBridge ? 104 : null);

        (await Kernel.Ping(a.NetNs.Name, net.Gateway4)).EnsureOk();
        (await cni.Check(a, conf, ra)).AssertSilentSuccess();
        Assert.Equal(new LeaseRecord(net.V4(10), a.ContainerId, a.IfName), Assert.Single(await IpamState.Leases(Flavor.IpamType, net)));
        (await cni.Add(b, conf)).AssertError(Flavor.IsPodBridge ? 102 : null);   // the one address is still a's
        if (!Flavor.IsPodBridge) (await cni.Del(b, conf)).AssertSilentSuccess();   // reference leaves b's veth behind

        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        Assert.Equal(net.V4(10), FirstV4(await AddOk(cni, b, conf)));
    }

    [Fact]
    public async Task ThirtyTwoConcurrentAdds_GetDistinctAddresses_ThenAllDel()
    {
        const int n = 32;
        using var net = await TestNetwork.Create();
        var pods = await TestPod.CreateMany(n);
        try
        {
            var cni = new CniDriver(Flavor, net);
            var conf = net.Config(Flavor);

            var adds = await Task.WhenAll(pods.Select(p => cni.Add(p, conf)));
            foreach (var add in adds) add.AssertSuccess();
            var addresses = adds.Select(a => FirstV4(a.Result)).ToList();
            Assert.Equal(n, addresses.Distinct().Count());

            for (var i = 0; i < n; i++)
            {
                var kernel = await Kernel.GlobalAddresses(pods[i].NetNs.Name, pods[i].IfName);
                Assert.Contains(kernel, k => k.Local == addresses[i]);
            }
            Assert.Equal(n, (await Kernel.BridgePorts(net.NodeNs, net.Bridge)).Count);
            Assert.Equal(addresses.Order(), (await IpamState.Leases(Flavor.IpamType, net)).Select(l => l.Ip).Order());
            (await Kernel.Ping(pods[0].NetNs.Name, addresses[n - 1])).EnsureOk();

            var dels = await Task.WhenAll(pods.Select((p, i) => cni.Del(p, conf, adds[i].Result)));
            foreach (var del in dels) del.AssertSilentSuccess();
            Assert.True(await Kernel.Eventually(async () => (await Kernel.BridgePorts(net.NodeNs, net.Bridge)).Count == 0),
                "bridge still has ports after every DEL");
            foreach (var p in pods)
                Assert.False(await Kernel.LinkExists(p.NetNs.Name, p.IfName), $"{p} still has its iface");
            Assert.Empty(await IpamState.Leases(Flavor.IpamType, net));
        }
        finally
        {
            foreach (var p in pods) p.Dispose();
        }
    }

    public enum DelCase { Twice, NeverAdded, EmptyNetNsWithoutPrevResult, NetNsDeletedFirst, InterfaceAlreadyGone }

    /// <summary>CNI.md 2.14: every one of these DELs exits 0 and releases the lease (proved by re-adding into a one-address range).</summary>
    [Theory]
    [InlineData(DelCase.Twice)]
    [InlineData(DelCase.NeverAdded)]
    [InlineData(DelCase.EmptyNetNsWithoutPrevResult)]
    [InlineData(DelCase.NetNsDeletedFirst)]
    [InlineData(DelCase.InterfaceAlreadyGone)]
    public async Task Del_IsIdempotent_AndReleasesTheLease(DelCase @case)
    {
        using var net = await TestNetwork.Create();
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = OneAddressConfig(net);

        JsonObject? ra = null;
        string? hostVeth = null;
        if (@case != DelCase.NeverAdded)
        {
            ra = await AddOk(cni, a, conf);
            hostVeth = (string)ra["interfaces"]![1]!["name"]!;
        }

        switch (@case)
        {
            case DelCase.Twice:
                (await cni.Del(a, conf, ra)).AssertSilentSuccess();
                (await cni.Del(a, conf, ra)).AssertSilentSuccess();
                break;
            case DelCase.NeverAdded:
                (await cni.Del(a, conf)).AssertSilentSuccess();
                break;
            case DelCase.EmptyNetNsWithoutPrevResult:
                // containerd's second DEL after the sandbox is gone.
                (await cni.Del(a, conf, prevResult: null, netns: "")).AssertSilentSuccess();
                break;
            case DelCase.NetNsDeletedFirst:
                await a.NetNs.Delete();
                (await cni.Del(a, conf, ra)).AssertSilentSuccess();
                Assert.True(await Kernel.Eventually(async () => !await Kernel.LinkExists(net.NodeNs, hostVeth!)), $"{hostVeth} outlived its netns");
                break;
            case DelCase.InterfaceAlreadyGone:
                (await Sh.Ip(a.NetNs.Name, "link", "delete", a.IfName)).EnsureOk();
                (await cni.Del(a, conf, ra)).AssertSilentSuccess();
                break;
        }

        if (Flavor.IsPodBridge && hostVeth is not null)
            Assert.True(await Kernel.Eventually(async () => !await Kernel.LinkExists(net.NodeNs, hostVeth)), $"{hostVeth} survived DEL");

        Assert.Empty(await IpamState.LeasesOf(Flavor.IpamType, net, a.ContainerId));
        var rb = await AddOk(cni, b, conf);
        Assert.Equal(net.V4(10), FirstV4(rb));
    }

    [Fact]
    public async Task Version_WithLibcniDummyEnvironment()
    {
        using var net = await TestNetwork.Create();
        var cni = new CniDriver(Flavor, net);

        var v = (await cni.Version()).AssertSuccess().Result;
        Assert.Equal("1.0.0", (string?)v["cniVersion"]);
        var supported = v["supportedVersions"]!.AsArray().Select(x => (string)x!).ToList();
        foreach (var version in Flavor.Versions) Assert.Contains(version, supported);

        // CNI.md 1.16: the answer speaks the asker's version (the reference always answers 1.0.0).
        var old = (await cni.Version("""{"cniVersion":"0.4.0"}""")).AssertSuccess().Result;
        if (Flavor.IsPodBridge) Assert.Equal("0.4.0", (string?)old["cniVersion"]);
    }

    public enum Tamper { AddressRemoved, InterfaceRemoved, RouteRemoved }

    [Theory]
    [InlineData(Tamper.AddressRemoved)]
    [InlineData(Tamper.InterfaceRemoved)]
    [InlineData(Tamper.RouteRemoved)]
    public async Task Check_DetectsTampering(Tamper tamper)
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        conf["isDefaultGateway"] = true;
        var result = await AddOk(cni, pod, conf);
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();

        var ip = $"{FirstV4(result)}/24";
        (tamper switch
        {
            Tamper.AddressRemoved => await Sh.Ip(pod.NetNs.Name, "addr", "del", ip, "dev", pod.IfName),
            Tamper.InterfaceRemoved => await Sh.Ip(pod.NetNs.Name, "link", "delete", pod.IfName),
            _ => await Sh.Ip(pod.NetNs.Name, "route", "del", "default"),
        }).EnsureOk();

        var check = await cni.Check(pod, conf, result);
        check.AssertError(Flavor.IsPodBridge ? 106 : null);
    }

    [Fact]
    public async Task IsGateway_EnablesIpForwardingOnTheNode()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        // A new netns copies ip_forward from the initial one: start from a known 0.
        await Kernel.SetSysctl(net.NodeNs!, "net.ipv4.ip_forward", "0");
        var cni = new CniDriver(Flavor, net);
        await AddOk(cni, pod, net.Config(Flavor));
        Assert.Equal("1", await Kernel.Sysctl(net.NodeNs, "net.ipv4.ip_forward"));
    }

    /// <summary>A harness sanity check: the assertions fail when the plugin did not do its job.</summary>
    [Fact]
    public async Task Assertions_RejectAKernelThatDisagrees()
    {
        using var net = await TestNetwork.Create();
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var result = await AddOk(cni, pod, net.Config(Flavor));
        (await Sh.Ip(pod.NetNs.Name, "link", "set", pod.IfName, "down")).EnsureOk();
        await Assert.ThrowsAsync<XunitException>(() => Expect.ResultMatchesKernel(result, "1.0.0", net, pod, Flavor));
    }
}
