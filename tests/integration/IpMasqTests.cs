using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using PodBridge.IntegrationTests.Reliability;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests;

/// <summary>
/// ipMasq: pod traffic leaving its subnet is masqueraded by nftables rules podbridge keeps in table inet podbridge,
/// one set of pod addresses + one chain with one masquerade rule per (network, subnet). Every test runs the plugin in
/// a private node netns: nftables rulesets are per netns, so this machine's own ruleset is never touched.
/// </summary>
public sealed class IpMasqTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    [Fact]
    public async Task DualStack_AddPutsBothAddressesInTheirSets_CheckPasses_DelRemovesThem()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net, dualStack: true);

        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var (v4, v6) = (Address(result, 4), Address(result, 6));
        var rs = await NftRuleset.Of(net);
        var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);
        var set6 = SetName(net, Convert.ToHexStringLower(System.Net.IPAddress.Parse($"fd50:6262:0:{net.Octet:x}::").GetAddressBytes()), 64);
        Assert.Equal([v4], rs.Elements(set4));
        Assert.Equal([v6], rs.Elements(set6));
        var rule4 = Assert.Single(rs.MasqueradeRules(set4));
        Assert.Contains($"@{set4}", rule4.Text);
        Assert.Contains($"\"addr\":\"10.250.{net.Octet}.0\",\"len\":24", rule4.Text);
        Assert.Contains("224.0.0.0", rule4.Text);
        Assert.Equal($"podbridge {net.Name} {net.Subnet4}", rule4.Comment);
        var rule6 = Assert.Single(rs.MasqueradeRules(set6));
        Assert.Contains("ff00::", rule6.Text);
        Assert.Equal(2, rs.MasqueradeRules().Count);
        Assert.True(rs.IsNatPostrouting(set4) && rs.IsNatPostrouting(set6), $"chains must hook nat postrouting\n{rs}");

        (await cni.Check(pod, conf, result)).AssertSilentSuccess();

        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        rs = await NftRuleset.Of(net);
        Assert.Empty(rs.Elements(set4));
        Assert.Empty(rs.Elements(set6));
        // The rules stay for the network's next pods; without a set element they match nothing.
        Assert.Equal(2, rs.MasqueradeRules().Count);

        // containerd's second DEL: no prevResult, netns gone; and a repeated DEL with prevResult, elements gone.
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        await pod.NetNs.Delete();
        (await cni.Del(pod, conf, netns: "")).AssertSilentSuccess();
    }

    /// <summary>A network name too long for an nft set name is shortened to a head plus a hash: still a legal identifier.</summary>
    [Fact]
    public async Task VeryLongNetworkName_StillGetsItsSetAndRule()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net);
        conf["name"] = net.Name + "-" + new string('n', 200);

        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var rs = await NftRuleset.Of(net);
        var rule = Assert.Single(rs.MasqueradeRules());
        Assert.Contains(Address(result, 4), rs.AllElements());
        Assert.Contains("_" , rule.Chain);
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        Assert.DoesNotContain(Address(result, 4), (await NftRuleset.Of(net)).AllElements());
    }

    /// <summary>DEL without prevResult (CNI 0.3.x, or a runtime that lost its cache) reads the pod interface's addresses.</summary>
    [Fact]
    public async Task DelWithoutPrevResult_RemovesTheElementFoundOnThePodInterface()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net);
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);
        Assert.Equal([Address(result, 4)], (await NftRuleset.Of(net)).Elements(set4));

        (await cni.Del(pod, conf)).AssertSilentSuccess();
        Assert.Empty((await NftRuleset.Of(net)).Elements(set4));
    }

    /// <summary>
    /// Concurrent first ADDs on one network all find the set missing and all run the setup transaction (flush chain +
    /// add rule): the result must still be exactly one rule, with every pod address in the set.
    /// </summary>
    [Fact]
    public async Task ConcurrentFirstAdds_LeaveExactlyOneRule_AndEveryAddressInTheSet()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        var pods = await TestPod.CreateMany(6);
        try
        {
            var cni = new CniDriver(Flavor, net);
            var conf = MasqConfig(net);
            var results = await Task.WhenAll(pods.Select(async p => (await cni.Add(p, conf)).AssertSuccess().Result));

            var rs = await NftRuleset.Of(net);
            var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);
            Assert.True(rs.MasqueradeRules().Count == 1, $"expected exactly one masquerade rule\n{rs}");
            Assert.Equal(results.Select(r => Address(r, 4)).Order(), rs.Elements(set4).Order());

            await Task.WhenAll(pods.Zip(results).Select(async x => (await cni.Del(x.First, conf, x.Second)).AssertSilentSuccess()));
            rs = await NftRuleset.Of(net);
            Assert.Empty(rs.Elements(set4));
            Assert.Single(rs.MasqueradeRules());
        }
        finally
        {
            foreach (var p in pods) p.Dispose();
        }
    }

    /// <summary>
    /// The gateway step runs after masquerading and fails here (another address of the subnet sits on the bridge):
    /// the rollback must take the pod's element out of the set again.
    /// </summary>
    [Fact]
    public async Task FailedAdd_AfterMasquerading_LeavesNoElement()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net);
        (await Sh.Ip(net.NodeNs, "link", "add", net.Bridge, "type", "bridge")).EnsureOk();
        (await Sh.Ip(net.NodeNs, "addr", "add", $"{net.V4(200)}/24", "dev", net.Bridge)).EnsureOk();

        (await cni.Add(pod, conf)).AssertError(7, net.V4(200));

        var rs = await NftRuleset.Of(net);
        var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);
        // The set exists, so the failed ADD did reach the masquerade step before the gateway step failed.
        Assert.True(rs.HasSet(set4), $"the ADD never set up masquerading, so this test proves nothing\n{rs}");
        Assert.Empty(rs.Elements(set4));
        Assert.Empty(await LeaseList.Of(net));
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName), "the failed ADD left the pod interface");
        Assert.Empty(await Kernel.Links(net.NodeNs, net.Bridge));
    }

    [Fact]
    public async Task Check_ReportsAnAddressMissingFromItsSet()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net);
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var v4 = Address(result, 4);
        var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();

        (await net.Node!.Exec("nft", "delete", "element", "inet", "podbridge", set4, $"{{ {v4} }}")).EnsureOk();
        (await cni.Check(pod, conf, result)).AssertError(106, v4, set4);

        // A re-added element and a deleted rule: CHECK names the chain.
        (await net.Node!.Exec("nft", "add", "element", "inet", "podbridge", set4, $"{{ {v4} }}")).EnsureOk();
        (await net.Node!.Exec("nft", "flush", "chain", "inet", "podbridge", set4)).EnsureOk();
        (await cni.Check(pod, conf, result)).AssertError(106, set4, "masquerade rule");
    }

    /// <summary>
    /// Wires a host of the test's own ("outside" the pod subnet) to the node by a /30 veth; it knows no route back to
    /// the pod subnet, so only masqueraded pod traffic gets answered.
    /// </summary>
    internal static async Task<(string NodeIp, string OutsideIp)> ConnectOutsideHost(TestNetwork net, TestNetNs outside)
    {
        var (nodeEnd, outsideEnd) = (RunScope.NewName(), RunScope.NewName());
        var (nodeIp, outsideIp) = ($"10.251.{net.Octet}.1", $"10.251.{net.Octet}.2");
        (await Sh.Ip(net.NodeNs, "link", "add", nodeEnd, "type", "veth", "peer", "name", outsideEnd, "netns", outside.Name)).EnsureOk();
        (await Sh.Ip(net.NodeNs, "addr", "add", $"{nodeIp}/30", "dev", nodeEnd)).EnsureOk();
        (await Sh.Ip(net.NodeNs, "link", "set", nodeEnd, "up")).EnsureOk();
        (await Sh.Ip(outside.Name, "addr", "add", $"{outsideIp}/30", "dev", outsideEnd)).EnsureOk();
        (await Sh.Ip(outside.Name, "link", "set", outsideEnd, "up")).EnsureOk();
        return (nodeIp, outsideIp);
    }

    /// <summary>
    /// The functional proof: an "outside" host reachable from the node only knows the route back to the node's own
    /// address, so the pod's ping is answered only when the node rewrote the source. Taking the pod's address out of
    /// the set (the rest stays) makes the same ping fail, so the element is what does it.
    /// </summary>
    [Fact]
    public async Task PodTrafficLeavingTheSubnet_CarriesTheNodeAddress()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        using var outside = await TestNetNs.Create();
        var (nodeIp, outsideIp) = await ConnectOutsideHost(net, outside);

        var cni = new CniDriver(Flavor, net);
        var conf = MasqConfig(net);
        conf["isDefaultGateway"] = true;
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        var v4 = Address(result, 4);

        var masqueraded = await Kernel.Ping(pod.NetNs.Name, outsideIp, attempts: 5);
        Assert.True(masqueraded.Ok, $"pod {v4} -> {outsideIp} got no answer: not masqueraded\n{masqueraded}\n{await NftRuleset.Of(net)}");
        output.WriteLine($"pod {v4} reached {outsideIp}, which only routes back to the node's {nodeIp}");

        var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);
        (await net.Node!.Exec("nft", "delete", "element", "inet", "podbridge", set4, $"{{ {v4} }}")).EnsureOk();
        var plain = await Kernel.Ping(pod.NetNs.Name, outsideIp, attempts: 1);
        Assert.False(plain.Ok, $"the ping was answered without the pod's element in {set4}: the test proves nothing\n{plain}");

        // Inside the subnet nothing is rewritten: the gateway sees the pod's own address (it answers either way, so
        // this only shows the rule leaves local traffic working).
        (await Kernel.Ping(pod.NetNs.Name, net.Gateway4)).EnsureOk();
    }

    /// <summary>
    /// No nft anywhere (an empty tmpfs over /usr/sbin in a private mount namespace; /sbin is its symlink on Debian 12):
    /// the nftables backend speaks nf_tables netlink itself, so ADD masquerades and DEL unmasquerades all the same.
    /// </summary>
    [Fact]
    public async Task WithoutNft_AddAndDelStillMasquerade_OverNetlink()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var conf = MasqConfig(net);
        var set4 = SetName(net, $"10.250.{net.Octet}.0", 24);

        async Task<ShResult> RunWithoutNft(string command)
        {
            var env = new Dictionary<string, string?>
            {
                ["CNI_COMMAND"] = command, ["CNI_CONTAINERID"] = pod.ContainerId, ["CNI_NETNS"] = pod.NetNs.Path,
                ["CNI_IFNAME"] = pod.IfName, ["CNI_ARGS"] = "", ["CNI_PATH"] = Binaries.PodBridgeDir,
                ["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin", ["PODBRIDGE_LOG_FILE"] = null, ["PODBRIDGE_LOG_LEVEL"] = null,
            };
            return await Sh.Run("ip", ["netns", "exec", net.NodeNs!, "unshare", "-m", "sh", "-c",
                $"mount -t tmpfs none /usr/sbin && {{ [ -L /sbin ] || mount -t tmpfs none /sbin; }} && ! command -v nft && exec {Binaries.PodBridge}"],
                stdin: conf.ToJsonString(), env: env);
        }

        var add = await RunWithoutNft("ADD");
        Assert.True(add.ExitCode == 0, $"ADD without the nft binary must work over netlink\n{add}");
        var v4 = Address(JsonNode.Parse(add.Stdout)!.AsObject(), 4);
        var rs = await NftRuleset.Of(net);
        Assert.Equal([v4], rs.Elements(set4));
        Assert.Equal($"{pod.ContainerId}/{pod.IfName}", rs.Tags(set4)[v4]);
        Assert.Single(rs.MasqueradeRules(set4));
        Assert.True(rs.IsNatPostrouting(set4), $"{set4} is not a nat postrouting chain\n{rs}");

        var del = await RunWithoutNft("DEL");
        Assert.True(del.ExitCode == 0 && del.Stdout.Trim().Length == 0, $"DEL without the nft binary must work over netlink\n{del}");
        Assert.Empty((await NftRuleset.Of(net)).Elements(set4));
        Assert.Empty(await LeaseList.Of(net));
    }

    [Fact]
    public async Task IpMasqFalse_CreatesNoNftablesState()
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor);
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
        var rs = await NftRuleset.Of(net);
        Assert.False(rs.HasTable, $"ipMasq off must not create table inet podbridge\n{rs}");
    }

    private static JsonObject MasqConfig(TestNetwork net, bool dualStack = false)
    {
        var conf = net.Config(Flavor, dualStack: dualStack);
        conf["ipMasq"] = true;
        return conf;
    }

    private static string SetName(TestNetwork net, string subnet, int prefix) => $"masq_{net.Name}_{subnet}_{prefix}";

    private static string Address(JsonObject result, int family) =>
        Must.ResultAddresses(result).Single(a => a.Contains(':') == (family == 6));
}

/// <summary>`nft -j list ruleset` of a node netns, reduced to what the ipMasq tests look at: table inet podbridge.</summary>
public sealed class NftRuleset
{
    public sealed record Rule(string Chain, string? Comment, string Text);

    private readonly JsonArray _items;
    private readonly string _raw;

    private NftRuleset(JsonArray items, string raw) => (_items, _raw) = (items, raw);

    public static async Task<NftRuleset> Of(TestNetwork net)
    {
        var r = (await net.Node!.Exec("nft", "-j", "list", "ruleset")).EnsureOk();
        var items = JsonNode.Parse(r.Stdout)?["nftables"]?.AsArray() ?? throw new XunitException($"no nftables array\n{r}");
        return new NftRuleset(items, r.Stdout);
    }

    private IEnumerable<JsonObject> Of(string kind) =>
        _items.OfType<JsonObject>().Select(o => o[kind]).OfType<JsonObject>()
              .Where(o => (string?)o["family"] == "inet" && (string?)(o["table"] ?? o["name"]) == "podbridge");

    public bool HasTable => _items.OfType<JsonObject>().Select(o => o["table"]).OfType<JsonObject>()
        .Any(t => (string?)t["family"] == "inet" && (string?)t["name"] == "podbridge");

    public bool HasSet(string name) => Of("set").Any(s => (string?)s["name"] == name);

    /// <summary>The set's elements; empty when the set has none (or does not exist: check <see cref="HasSet"/>).</summary>
    public List<string> Elements(string set) =>
        Of("set").Where(s => (string?)s["name"] == set)
                 .SelectMany(s => s["elem"]?.AsArray() ?? [])
                 .Select(e => System.Net.IPAddress.Parse(Value(e!)).ToString())
                 .ToList();

    /// <summary>Every element of every podbridge set.</summary>
    public List<string> AllElements() =>
        Of("set").SelectMany(s => s["elem"]?.AsArray() ?? [])
                 .Select(e => System.Net.IPAddress.Parse(Value(e!)).ToString())
                 .ToList();

    /// <summary>Each element's comment (the attachment tag podbridge writes), by address.</summary>
    public Dictionary<string, string?> Tags(string set) =>
        Of("set").Where(s => (string?)s["name"] == set)
                 .SelectMany(s => s["elem"]?.AsArray() ?? [])
                 .ToDictionary(e => System.Net.IPAddress.Parse(Value(e!)).ToString(), e => (string?)e!["elem"]?["comment"]);

    // A bare "10.0.0.5", or {"elem":{"val":"10.0.0.5","comment":"..."}} when the element has a comment.
    private static string Value(JsonNode e) => e is JsonValue ? (string)e! : (string)e["elem"]!["val"]!;

    public List<Rule> MasqueradeRules(string? chain = null) =>
        Of("rule").Where(r => chain is null || (string?)r["chain"] == chain)
                  .Where(r => r["expr"]?.AsArray().Any(x => x is JsonObject o && o.ContainsKey("masquerade")) == true)
                  .Select(r => new Rule((string)r["chain"]!, (string?)r["comment"], r["expr"]!.ToJsonString()))
                  .ToList();

    public bool IsNatPostrouting(string chain) =>
        Of("chain").Any(c => (string?)c["name"] == chain && (string?)c["type"] == "nat" && (string?)c["hook"] == "postrouting");

    public override string ToString() => $"nft -j list ruleset: {_raw}";
}
