using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// Every way a runtime or an operator can get an invocation wrong: the precise CNI code (CNI.md §4), a message
/// naming the culprit, exactly one JSON error object on stdout — and nothing created in the kernel or the IPAM.
/// </summary>
public sealed class PodBridgeErrorTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    private static async Task<(TestNetwork Net, TestPod Pod, CniDriver Cni)> Setup()
    {
        var net = await TestNetwork.Create();
        var pod = await TestPod.Create();
        return (net, pod, new CniDriver(Flavor, net));
    }

    private static JsonObject OneAddress(TestNetwork net, string version = "1.0.0")
    {
        var conf = net.Config(Flavor, version);
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(10))));
        return conf;
    }

    /// <summary>After a rejected ADD: no bridge, no pod iface, and the only address is still free.</summary>
    private static async Task AssertNothingCreated(CniDriver cni, TestNetwork net, TestPod pod, JsonObject oneAddressConf, bool bridgeMayExist = false)
    {
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName), "rejected ADD created the pod iface");
        if (!bridgeMayExist) Assert.False(await Kernel.LinkExists(null, net.Bridge), "rejected ADD created the bridge");
        Assert.Empty(await IpamState.Leases(Flavor.IpamType, net));
        using var other = await TestPod.Create();
        var add = (await cni.Add(other, oneAddressConf)).AssertSuccess();
        Assert.Contains(net.V4(10) + "/", (string)add.Result["ips"]![0]!["address"]!);
    }

    [Theory]
    [InlineData("{\"cniVersion\":\"1.0.0\",")]
    [InlineData("not json")]
    [InlineData("")]
    [InlineData("[1,2]")]
    [InlineData("{\"cniVersion\":\"1.0.0\"} {}")]
    public async Task MalformedConfig_Is6(string stdin)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        (await cni.Invoke(cni.Call("ADD", pod, new JsonObject(), null) with { Stdin = stdin })).AssertError(6);
        Assert.False(await Kernel.LinkExists(null, net.Bridge));
    }

    [Theory]
    [InlineData("0.2.0")]
    [InlineData("9.9.9")]
    [InlineData("1.2.0")]
    public async Task UnsupportedCniVersion_Is1(string version)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        (await cni.Add(pod, net.Config(Flavor, version))).AssertError(1, version);
        await AssertNothingCreated(cni, net, pod, OneAddress(net));
    }

    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID", false)]
    [InlineData("ADD", "CNI_NETNS", false)]
    [InlineData("ADD", "CNI_IFNAME", false)]
    [InlineData("ADD", "CNI_CONTAINERID", true)]
    [InlineData("ADD", "CNI_NETNS", true)]
    [InlineData("ADD", "CNI_IFNAME", true)]
    [InlineData("CHECK", "CNI_NETNS", true)]
    [InlineData("DEL", "CNI_CONTAINERID", true)]
    [InlineData("DEL", "CNI_IFNAME", false)]
    [InlineData("ADD", "CNI_COMMAND", false)]
    public async Task MissingEnvironmentVariable_Is4_NamingIt(string command, string variable, bool emptyInsteadOfUnset)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var call = cni.Call(command, pod, net.Config(Flavor), null);
        // libcni exports "" for variables it does not use: empty must count as unset.
        call = emptyInsteadOfUnset
            ? call with { Extra = new Dictionary<string, string> { [variable] = "" } }
            : call with { Unset = [variable] };
        (await cni.Invoke(call)).AssertError(4, variable);
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName));
    }

    [Fact]
    public async Task UnknownCommand_Is4_NamingIt()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        (await cni.Invoke(cni.Call("FROB", pod, net.Config(Flavor), null))).AssertError(4, "FROB");
    }

    [Theory]
    [InlineData("eth0/1")]
    [InlineData("eth 0")]
    [InlineData("eth:0")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("abcdefghijklmnop")]
    public async Task InvalidIfName_Is4(string ifName)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var call = cni.Call("ADD", pod, OneAddress(net), null) with { IfName = ifName };
        (await cni.Invoke(call)).AssertError(4, "CNI_IFNAME");
        await AssertNothingCreated(cni, net, pod, OneAddress(net));
    }

    [Theory]
    [InlineData("-leadingdash")]
    [InlineData("has space")]
    [InlineData("a/b")]
    [InlineData("_x")]
    [InlineData("ünïcode")]
    public async Task InvalidContainerId_Is4(string id)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var call = cni.Call("ADD", pod, OneAddress(net), null) with { ContainerId = id };
        (await cni.Invoke(call)).AssertError(4, "CNI_CONTAINERID");
        await AssertNothingCreated(cni, net, pod, OneAddress(net));
    }

    /// <summary>Code 8 (InvalidNetNs), as the reference uses for its own-netns check.</summary>
    [Fact]
    public async Task Add_IntoANetNsThatDoesNotExist_FailsAndCreatesNothing()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var missing = $"/run/netns/{RunScope.NewName()}";
        var call = cni.Call("ADD", pod, OneAddress(net), null) with { NetNs = missing };
        (await cni.Invoke(call)).AssertError(8, "CNI_NETNS");
        await AssertNothingCreated(cni, net, pod, OneAddress(net));
    }

    [Fact]
    public async Task Add_IntoThePluginsOwnNetNs_FailsAndCreatesNothing()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var call = cni.Call("ADD", pod, OneAddress(net), null) with { NetNs = "/proc/self/ns/net" };
        (await cni.Invoke(call)).AssertError(8, "CNI_NETNS");
        await AssertNothingCreated(cni, net, pod, OneAddress(net));
    }

    [Fact]
    public async Task Check_OnConfig031_Is1()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor, "0.3.1");
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        (await cni.Check(pod, conf, result)).AssertError(1, "CHECK");
    }

    [Fact]
    public async Task Check_WithoutPrevResult_Is7()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor);
        (await cni.Add(pod, conf)).AssertSuccess();
        (await cni.Invoke(cni.Call("CHECK", pod, conf, null))).AssertError(7, "prevResult");
    }

    [Theory]
    [InlineData("GC")]
    [InlineData("STATUS")]
    public async Task Verbs110_OnConfig100_Are1(string verb)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        (await cni.Invoke(new CniCall(verb) { Stdin = net.Config(Flavor).ToJsonString() })).AssertError(1, verb);
    }

    [Theory]
    [InlineData("10.250.0.0/33")]
    [InlineData("banana")]
    [InlineData("10.250.0.0")]
    [InlineData("10.250.0.0/31")]
    [InlineData("10.250.0.0/32")]
    public async Task InvalidSubnet_Is7_NamingTheField(string subnet)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor);
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(subnet)));
        (await cni.Add(pod, conf)).AssertError(7, "subnet");
        await AssertNothingCreated(cni, net, pod, OneAddress(net), bridgeMayExist: true);
    }

    [Fact]
    public async Task RangeStartOutsideSubnet_Is7_NamingTheField()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor);
        conf["ipam"]!["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4, rangeStart: "10.99.0.5")));
        (await cni.Add(pod, conf)).AssertError(7, "rangeStart");
        await AssertNothingCreated(cni, net, pod, OneAddress(net), bridgeMayExist: true);
    }

    public enum BadConfig { NameMissing, NameInvalid, MtuTooSmall, HairpinAndPromisc, IpamTypeMissing, CniVersionMissing, WrongType }

    [Theory]
    [InlineData(BadConfig.NameMissing, "name")]
    [InlineData(BadConfig.NameInvalid, "name")]
    [InlineData(BadConfig.MtuTooSmall, "mtu")]
    [InlineData(BadConfig.HairpinAndPromisc, "hairpinMode")]
    [InlineData(BadConfig.IpamTypeMissing, "ipam.type")]
    [InlineData(BadConfig.CniVersionMissing, "cniVersion")]
    [InlineData(BadConfig.WrongType, "isGateway")]
    public async Task InvalidNetworkConfig_Is7_NamingTheKey(BadConfig bad, string mentions)
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor);
        switch (bad)
        {
            case BadConfig.NameMissing: conf.Remove("name"); break;
            case BadConfig.NameInvalid: conf["name"] = "no spaces allowed"; break;
            case BadConfig.MtuTooSmall: conf["mtu"] = 10; break;
            case BadConfig.HairpinAndPromisc: conf["hairpinMode"] = true; conf["promiscMode"] = true; break;
            case BadConfig.IpamTypeMissing: ((JsonObject)conf["ipam"]!).Remove("type"); break;
            case BadConfig.CniVersionMissing: conf.Remove("cniVersion"); break;
            case BadConfig.WrongType: conf["isGateway"] = "yes"; break;
        }
        (await cni.Add(pod, conf)).AssertError(7, mentions);
        if (bad is not (BadConfig.NameMissing or BadConfig.NameInvalid or BadConfig.CniVersionMissing or BadConfig.WrongType))
        {
            // Invalid for ADD, but DEL (which the runtime sends next) still tears down and exits 0.
            var del = await cni.Del(pod, conf);
            Assert.True(del.Succeeded, $"DEL after the refused ADD failed: {del.Stdout}");
        }
        await AssertNothingCreated(cni, net, pod, OneAddress(net));
    }

    [Fact]
    public async Task DelegatedIpamNotInCniPath_Is107_AndCreatesNothing()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor);
        conf["ipam"]!["type"] = "no-such-ipam";
        (await cni.Add(pod, conf)).AssertError(107, "no-such-ipam");
        await AssertNothingCreated(cni, net, pod, OneAddress(net), bridgeMayExist: true);
    }

    [Fact]
    public async Task Error_IsPrintedInTheConfigsVersion()
    {
        var (net, pod, cni) = await Setup();
        using var _ = net; using var __ = pod;
        var conf = net.Config(Flavor, "0.4.0");
        conf["mtu"] = 10;
        var err = (await cni.Add(pod, conf)).AssertError(7);
        Assert.Equal("0.4.0", (string?)err.Result["cniVersion"]);
        Assert.DoesNotContain(" at ", err.Stdout);   // never a stack trace on stdout
    }
}
