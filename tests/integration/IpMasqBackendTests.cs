using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests;

/// <summary>
/// ipMasqBackend: the iptables backend (a nat chain per attachment, through iptables-restore; Debian's iptables is
/// iptables-nft) next to the nftables one, and what both promise beyond the reference: DEL without netns and
/// prevResult, and GC, remove the attachment's masquerading (containernetworking/plugins#810). Every test runs the
/// plugin in a private node netns: the nat table and nftables ruleset of this machine are never touched.
/// </summary>
public sealed class IpMasqBackendTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    private static JsonObject MasqConfig(TestNetwork net, string? backend, string version = "1.0.0")
    {
        var conf = net.Config(Flavor, version);
        conf["ipMasq"] = true;
        if (backend is not null) conf["ipMasqBackend"] = backend;
        return conf;
    }

    private static string V4(JsonObject result) => Kernel.AddressOf((string)result["ips"]![0]!["address"]!);

    /// <summary>`iptables -t nat -S` of the node netns, one rule per line.</summary>
    private static async Task<List<string>> Nat(TestNetwork net) =>
        (await net.Node!.Exec("iptables", "-t", "nat", "-S")).EnsureOk().Stdout
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();

    private static List<string> PodBridgeChains(List<string> nat) =>
        nat.Where(l => l.StartsWith("-N PB-", StringComparison.Ordinal)).Select(l => l[3..]).ToList();

    /// <summary>Is <paramref name="address"/> masqueraded by the given backend right now?</summary>
    private static async Task<bool> Masqueraded(TestNetwork net, string backend, string address)
    {
        if (backend == "iptables")
            return (await Nat(net)).Any(l => l.StartsWith($"-A POSTROUTING -s {address}/32 ", StringComparison.Ordinal) && l.Contains("-j PB-"));
        return (await NftRuleset.Of(net)).AllElements().Contains(address);
    }

    [Fact]
    public async Task Iptables_ChainPerAttachment_Masquerades_CheckVerifies_DelRemovesIt()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        using var outside = await TestNetNs.Create();
        var (nodeIp, outsideIp) = await IpMasqTests.ConnectOutsideHost(net, outside);

        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net, "iptables");
        conf["isDefaultGateway"] = true;
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var v4 = V4(result);

        var nat = await Nat(net);
        var chain = Assert.Single(PodBridgeChains(nat));
        Assert.Contains(nat, l => l.StartsWith($"-A {chain} -d {net.Subnet4} ", StringComparison.Ordinal) && l.EndsWith("-j ACCEPT"));
        Assert.Contains(nat, l => l.StartsWith($"-A {chain} ! -d 224.0.0.0/4 ", StringComparison.Ordinal) && l.EndsWith("-j MASQUERADE"));
        var jump = Assert.Single(nat, l => l.StartsWith("-A POSTROUTING", StringComparison.Ordinal));
        Assert.StartsWith($"-A POSTROUTING -s {v4}/32 ", jump);
        Assert.Contains($"id: \\\"{pod.ContainerId}/{pod.IfName}\\\"", jump);
        Assert.False((await NftRuleset.Of(net)).HasTable, "the iptables backend must not create table inet podbridge");

        var ping = await Kernel.Ping(pod.NetNs.Name, outsideIp, attempts: 5);
        Assert.True(ping.Ok, $"pod {v4} -> {outsideIp} got no answer: not masqueraded\n{ping}\n{string.Join('\n', await Nat(net))}");
        output.WriteLine($"pod {v4} reached {outsideIp} through iptables chain {chain}");

        (await cni.Check(pod, conf, result)).AssertSilentSuccess();
        (await net.Node!.Exec("iptables", "-t", "nat", "-F", chain)).EnsureOk();
        (await cni.Check(pod, conf, result)).AssertError(106, chain, "MASQUERADE");
        Assert.False((await Kernel.Ping(pod.NetNs.Name, outsideIp, attempts: 1)).Ok, "answered without the MASQUERADE rule: the test proves nothing");

        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        nat = await Nat(net);
        Assert.Empty(PodBridgeChains(nat));
        Assert.DoesNotContain(nat, l => l.StartsWith("-A POSTROUTING", StringComparison.Ordinal));
        (await cni.Del(pod, conf, result)).AssertSilentSuccess(); // idempotent
    }

    [Theory]
    [InlineData("nftables")]
    [InlineData("iptables")]
    public async Task DelWithoutNetnsOrPrevResult_RemovesTheMasquerading(string backend)
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        using var other = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net, backend);
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var kept = (await cni.Add(other, conf)).AssertSuccess().Result;
        Assert.True(await Masqueraded(net, backend, V4(result)));
        if (backend == "nftables")
            Assert.Equal($"{pod.ContainerId}/{pod.IfName}", (await NftRuleset.Of(net)).Tags($"masq_{net.Name}_10.250.{net.Octet}.0_24")[V4(result)]);

        // The pod's netns is gone and the runtime lost its cache: nothing tells DEL the address.
        await pod.NetNs.Delete();
        (await cni.Del(pod, conf, netns: "")).AssertSilentSuccess();
        Assert.False(await Masqueraded(net, backend, V4(result)), $"DEL without netns/prevResult left {V4(result)} masqueraded ({backend})");
        Assert.True(await Masqueraded(net, backend, V4(kept)), "DEL removed another pod's masquerading");

        (await cni.Del(other, conf, kept)).AssertSilentSuccess();
        Assert.False(await Masqueraded(net, backend, V4(kept)));
    }

    [Theory]
    [InlineData("nftables")]
    [InlineData("iptables")]
    public async Task Gc_RemovesTheMasqueradingOfEveryAttachmentNotListed(string backend)
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net, backend, "1.1.0");
        var ra = (await cni.Add(a, conf)).AssertSuccess().Result;
        var rb = (await cni.Add(b, conf)).AssertSuccess().Result;

        var gc = MasqConfig(net, backend, "1.1.0");
        gc["cni.dev/valid-attachments"] = new JsonArray(new JsonObject { ["containerID"] = a.ContainerId, ["ifname"] = a.IfName });
        (await cni.Invoke(new CniCall("GC") { Stdin = gc.ToJsonString() })).AssertSilentSuccess();

        Assert.True(await Masqueraded(net, backend, V4(ra)), "GC removed the masquerading of a listed attachment");
        Assert.False(await Masqueraded(net, backend, V4(rb)), $"GC left the masquerading of an unlisted attachment ({backend})");
        if (backend == "iptables") Assert.Single(PodBridgeChains(await Nat(net)));

        (await cni.Del(a, conf, ra)).AssertSilentSuccess();
        Assert.False(await Masqueraded(net, backend, V4(ra)));
    }

    /// <summary>
    /// Without ipMasqBackend: nftables, unless the node already uses legacy iptables (x_tables loaded in its netns),
    /// where the masquerading goes next to the node's other rules, through the iptables command.
    /// </summary>
    [Fact]
    public async Task AbsentBackend_IsNftables_UnlessTheNodeUsesLegacyIptables()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var a = await TestPod.Create();
        using var b = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net, backend: null);

        var ra = (await cni.Add(a, conf)).AssertSuccess().Result;
        Assert.Contains(V4(ra), (await NftRuleset.Of(net)).AllElements());
        Assert.Empty(PodBridgeChains(await Nat(net)));

        // Any legacy table in the node netns (here: listing nat through iptables-legacy loads it).
        (await net.Node!.Exec("iptables-legacy", "-t", "nat", "-S")).EnsureOk();
        var rb = (await cni.Add(b, conf)).AssertSuccess().Result;
        Assert.DoesNotContain(V4(rb), (await NftRuleset.Of(net)).AllElements());
        Assert.Single(PodBridgeChains(await Nat(net)));
        (await cni.Check(b, conf, rb)).AssertSilentSuccess();
        (await cni.Del(b, conf, rb)).AssertSilentSuccess();
        Assert.Empty(PodBridgeChains(await Nat(net)));
    }

    [Fact]
    public async Task UnknownBackend_Is7_NamingTheKey_AndLeavesNothing()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net, "ebtables");
        (await cni.Add(pod, conf)).AssertError(7, "ipMasqBackend", "ebtables");
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName));
        (await cni.Del(pod, conf)).AssertSilentSuccess();
    }
}
