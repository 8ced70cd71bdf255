using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The standalone IPAM binary driven as a bridge plugin drives it (same CNI_* environment, the whole network config
/// on stdin). Runs against host-local (<see cref="HostLocalIpamTests"/>) and podbridge-ipam (<see cref="PodBridgeIpamTests"/>):
/// podbridge-ipam must accept host-local's schema and answer like it.
/// </summary>
public abstract class IpamScenarios : IDisposable
{
    private readonly List<IDisposable> _owned = [];

    protected abstract string Binary { get; }
    protected abstract bool IsPodBridge { get; }
    private string IpamType => IsPodBridge ? "podbridge-ipam" : "host-local";

    private TestNetwork? _net;
    private TestNetNs? _ns;

    private async Task<TestNetwork> Net()
    {
        if (_net is null) { _net = await TestNetwork.Create(); _owned.Add(_net); }
        return _net;
    }

    /// <summary>IPAM plugins do not touch the netns, but a runtime always passes one.</summary>
    private async Task<string> NetNsPath()
    {
        if (_ns is null) { _ns = await TestNetNs.Create(); _owned.Add(_ns); }
        return _ns.Path;
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        GC.SuppressFinalize(this);
    }

    private async Task<JsonObject> Conf(JsonObject ipam, string version = "1.0.0")
    {
        var net = await Net();
        ipam["type"] = IpamType;
        ipam["dataDir"] = net.DataDir;
        return new JsonObject
        {
            ["cniVersion"] = version,
            ["name"] = net.Name,
            ["type"] = "bridge",
            ["bridge"] = net.Bridge,
            ["ipam"] = ipam,
        };
    }

    private async Task<JsonObject> Ranges(params JsonObject[][] sets) =>
        await Conf(new JsonObject { ["ranges"] = new JsonArray(sets.Select(s => (JsonNode)new JsonArray(s)).ToArray()) });

    private async Task<CniOutcome> Run(string command, string containerId, JsonObject conf, string ifName = "eth0")
    {
        var outcome = await PluginRunner.Run(Binary, new CniCall(command)
        {
            ContainerId = containerId,
            NetNs = await NetNsPath(),
            IfName = ifName,
            Path = Path.GetDirectoryName(Binary)!,
            Stdin = conf.ToJsonString(),
        });
        return outcome with { Strict = IsPodBridge };
    }

    private static List<string> Addresses(CniOutcome add) =>
        add.AssertSuccess().Result["ips"]!.AsArray().Select(i => Kernel.AddressOf((string)i!["address"]!)).ToList();

    private async Task<string> AddOne(string id, JsonObject conf, string ifName = "eth0") =>
        Assert.Single(Addresses(await Run("ADD", id, conf, ifName)));

    [Fact]
    public async Task Add_ReturnsAnAddressAndTheGateway_NoInterfaces()
    {
        var net = await Net();
        var add = (await Run("ADD", RunScope.NewContainerId(), await Ranges([TestNetwork.Range(net.Subnet4)]))).AssertSuccess();
        var r = add.Result;
        Assert.Equal("1.0.0", (string?)r["cniVersion"]);
        Assert.Null(r["interfaces"]);
        var ip = Assert.Single(r["ips"]!.AsArray())!;
        Assert.Equal($"{net.V4(2)}/24", (string?)ip["address"]);
        Assert.Equal(net.Gateway4, (string?)ip["gateway"]);
    }

    [Fact]
    public async Task Allocation_IsRoundRobin_AReleasedAddressWaitsForTheWrap()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(12))]);
        var (a, b, c, d) = (RunScope.NewContainerId(), RunScope.NewContainerId(), RunScope.NewContainerId(), RunScope.NewContainerId());
        Assert.Equal(net.V4(10), await AddOne(a, conf));
        Assert.Equal(net.V4(11), await AddOne(b, conf));
        (await Run("DEL", a, conf)).AssertSilentSuccess();
        Assert.Equal(net.V4(12), await AddOne(c, conf));   // not .10: it was just released
        Assert.Equal(net.V4(10), await AddOne(d, conf));   // wrapped
    }

    [Fact]
    public async Task LegacyTopLevelRange_IsAccepted()
    {
        var net = await Net();
        var conf = await Conf(new JsonObject
        {
            ["subnet"] = net.Subnet4,
            ["rangeStart"] = net.V4(50),
            ["rangeEnd"] = net.V4(51),
            ["gateway"] = net.V4(254),
        });
        var ip = Assert.Single((await Run("ADD", RunScope.NewContainerId(), conf)).AssertSuccess().Result["ips"]!.AsArray())!;
        Assert.Equal($"{net.V4(50)}/24", (string?)ip["address"]);
        Assert.Equal(net.V4(254), (string?)ip["gateway"]);
    }

    [Fact]
    public async Task TheGateway_IsNeverHandedOut()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range($"10.250.{net.Octet}.0/29", gateway: net.V4(3))]);
        var got = new List<string>();
        for (var i = 0; i < 5; i++) got.Add(await AddOne(RunScope.NewContainerId(), conf));
        Assert.Equal(new[] { 1, 2, 4, 5, 6 }.Select(net.V4), got.Order());
        (await Run("ADD", RunScope.NewContainerId(), conf)).AssertError(IsPodBridge ? 102 : null);
    }

    [Fact]
    public async Task DualStack_OneAddressPerRangeSet()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range(net.Subnet4)], [TestNetwork.Range(net.Subnet6)]);
        var ips = Addresses(await Run("ADD", RunScope.NewContainerId(), conf));
        Assert.Equal(2, ips.Count);
        Assert.Contains(net.V4(2), ips);
        Assert.Contains(Kernel.AddressOf($"fd50:6262:0:{net.Octet:x}::2"), ips);
    }

    [Fact]
    public async Task SecondAdd_ForTheSameContainerAndIfName_IsRefused_OtherIfNameIsNot()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range(net.Subnet4)]);
        var id = RunScope.NewContainerId();
        var first = await AddOne(id, conf);
        (await Run("ADD", id, conf)).AssertError(IsPodBridge ? 104 : null);
        var second = await AddOne(id, conf, "net1");
        Assert.NotEqual(first, second);
    }

    [Fact]
    public async Task Del_ReleasesByContainerAndIfName_AndIsIdempotent()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range(net.Subnet4, net.V4(10), net.V4(10))]);
        var (a, b) = (RunScope.NewContainerId(), RunScope.NewContainerId());
        (await Run("DEL", a, conf)).AssertSilentSuccess();   // never added
        Assert.Equal(net.V4(10), await AddOne(a, conf));
        (await Run("ADD", b, conf)).AssertError(IsPodBridge ? 102 : null);
        (await Run("DEL", a, conf, "net1")).AssertSilentSuccess();   // other ifname: releases nothing
        Assert.Equal(new LeaseRecord(net.V4(10), a, "eth0"), Assert.Single(await IpamState.Leases(IpamType, net)));
        (await Run("ADD", b, conf)).AssertError(IsPodBridge ? 102 : null);
        (await Run("DEL", a, conf)).AssertSilentSuccess();
        Assert.Empty(await IpamState.Leases(IpamType, net));
        (await Run("DEL", a, conf)).AssertSilentSuccess();
        Assert.Equal(net.V4(10), await AddOne(b, conf));
    }

    [Fact]
    public async Task Check_FindsTheLease_UntilItIsReleased()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range(net.Subnet4)]);
        var id = RunScope.NewContainerId();
        var add = (await Run("ADD", id, conf)).AssertSuccess();
        var withPrev = (JsonObject)conf.DeepClone();
        withPrev["prevResult"] = add.Result.DeepClone();
        (await Run("CHECK", id, withPrev)).AssertSilentSuccess();
        (await Run("DEL", id, withPrev)).AssertSilentSuccess();
        (await Run("CHECK", id, withPrev)).AssertError();
    }

    [Fact]
    public async Task RoutesAndResolvConf_AreReturned()
    {
        var net = await Net();
        var resolv = Path.Combine(net.DataDir, "resolv.conf");
        await File.WriteAllTextAsync(resolv, "nameserver 10.250.0.53\nsearch svc.example.test example.test\noptions ndots:5\n");
        var conf = await Conf(new JsonObject
        {
            ["ranges"] = new JsonArray(new JsonArray(TestNetwork.Range(net.Subnet4))),
            ["routes"] = new JsonArray(new JsonObject { ["dst"] = "0.0.0.0/0" }, new JsonObject { ["dst"] = "192.168.251.0/24", ["gw"] = net.V4(254) }),
            ["resolvConf"] = resolv,
        });
        var r = (await Run("ADD", RunScope.NewContainerId(), conf)).AssertSuccess().Result;
        var routes = r["routes"]!.AsArray();
        Assert.Contains(routes, x => (string?)x!["dst"] == "0.0.0.0/0");
        Assert.Contains(routes, x => (string?)x!["dst"] == "192.168.251.0/24" && (string?)x["gw"] == net.V4(254));
        Assert.Contains("10.250.0.53", r["dns"]!["nameservers"]!.AsArray().Select(x => (string)x!));
        Assert.Contains("svc.example.test", r["dns"]!["search"]!.AsArray().Select(x => (string)x!));
        Assert.Contains("ndots:5", r["dns"]!["options"]!.AsArray().Select(x => (string)x!));
    }

    [Fact]
    public async Task ThirtyTwoConcurrentProcesses_GetDistinctAddresses()
    {
        var net = await Net();
        var conf = await Ranges([TestNetwork.Range(net.Subnet4)]);
        var ids = Enumerable.Range(0, 32).Select(_ => RunScope.NewContainerId()).ToList();
        var adds = await Task.WhenAll(ids.Select(id => Run("ADD", id, conf)));
        var all = adds.SelectMany(Addresses).ToList();
        Assert.Equal(32, all.Distinct().Count());
        var dels = await Task.WhenAll(ids.Select(id => Run("DEL", id, conf)));
        foreach (var d in dels) d.AssertSilentSuccess();
    }
}

public sealed class HostLocalIpamTests : IpamScenarios
{
    protected override string Binary => Binaries.ReferenceHostLocal;
    protected override bool IsPodBridge => false;
}

public sealed class PodBridgeIpamTests : IpamScenarios
{
    protected override string Binary => Binaries.PodBridgeIpam;
    protected override bool IsPodBridge => true;
}
