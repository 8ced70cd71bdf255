using System.Net;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The config corpus (tests/integration/Corpus, see its README): real bridge configs with only <c>type</c> renamed run
/// ADD / CHECK / DEL on podbridge and, where Debian's reference bridge 1.1.1 knows every key, on the reference too;
/// the two results must have the same shape and leave the same kernel state. Names, subnets and dataDir are replaced
/// by the test's own so runs stay private (each plugin in its own node netns).
/// </summary>
public sealed class ConfigCorpusTests(ITestOutputHelper output)
{
    private static string CorpusDir => Path.Combine(Binaries.RepoRoot, "tests", "integration", "Corpus");

    public static TheoryData<string> Files()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(CorpusDir).Where(f => f.EndsWith(".json") || f.EndsWith(".conflist")).Order())
            data.Add(Path.GetFileName(f));
        return data;
    }

    /// <summary>Keys Debian's reference bridge 1.1.1 does not know (it would ignore them silently).</summary>
    private static readonly string[] NewerReferenceKeys = ["portIsolation", "disableContainerInterface", "vlanTrunk", "preserveDefaultVlan", "ipMasqBackend"];

    /// <summary>The bridge entry of a conflist (with the list's name and cniVersion, as libcni injects them), or the config itself.</summary>
    private static JsonObject BridgeConfig(JsonObject file)
    {
        if (file["plugins"] is not JsonArray plugins) return (JsonObject)file.DeepClone();
        var conf = (JsonObject)plugins.First(p => (string?)p!["type"] == "bridge")!.DeepClone();
        conf["cniVersion"] = file["cniVersion"]!.DeepClone();
        conf["name"] = file["name"]!.DeepClone();
        return conf;
    }

    /// <summary>The test's own network name, bridge, subnets and dataDir; nothing else changes.</summary>
    private static JsonObject Localize(JsonObject conf, TestNetwork net, PluginFlavor flavor)
    {
        var c = (JsonObject)conf.DeepClone();
        c["type"] = flavor.BridgeType;
        c["name"] = net.Name;
        c["bridge"] = net.Bridge;
        if (c["ipam"] is JsonObject ipam && ipam["type"] is not null)
        {
            ipam["dataDir"] = net.DataDir;
            Rewrite(ipam);
            if (ipam["ranges"] is JsonArray sets)
                foreach (var set in sets) foreach (var range in set!.AsArray()) Rewrite((JsonObject)range!);
        }
        return c;

        void Rewrite(JsonObject range)
        {
            if ((string?)range["subnet"] is { } subnet) range["subnet"] = subnet.Contains(':') ? net.Subnet6 : net.Subnet4;
            foreach (var key in new[] { "rangeStart", "rangeEnd", "gateway" })
                if ((string?)range[key] is { } a && !a.Contains(':')) range[key] = net.V4(IPAddress.Parse(a).GetAddressBytes()[3]);
        }
    }

    private sealed record Run(JsonObject? Result, CniOutcome Add, LinkState? PodLink, IReadOnlyList<AddrState> Addresses, int BridgePorts);

    private async Task<Run> AddCheckDel(JsonObject file, PluginFlavor flavor)
    {
        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var cni = new CniDriver(flavor, net);
        var conf = Localize(BridgeConfig(file), net, flavor);
        // A delegated host-local is found in CNI_PATH, as a runtime with both plugin sets installed would have it.
        var path = flavor.IsPodBridge ? $"{Binaries.PodBridgeDir}:{Binaries.ReferenceDir}" : Binaries.ReferenceDir;
        var add = await cni.Invoke(cni.Call("ADD", pod, conf, null) with { Path = path });
        if (!add.Succeeded)
        {
            Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName), $"{flavor}: the failed ADD left the pod interface");
            return new Run(null, add, null, [], 0);
        }
        var result = add.Result;
        var link = await Kernel.Link(pod.NetNs.Name, pod.IfName);
        var addresses = await Kernel.GlobalAddresses(pod.NetNs.Name, pod.IfName);
        var ports = (await Kernel.BridgePorts(net.NodeNs, net.Bridge)).Count;
        if (CniVersionAtLeast04((string)conf["cniVersion"]!))
            (await cni.Invoke(cni.Call("CHECK", pod, conf, result) with { Path = path })).AssertSilentSuccess();
        (await cni.Invoke(cni.Call("DEL", pod, conf, result) with { Path = path })).AssertSilentSuccess();
        Assert.False(await Kernel.LinkExists(pod.NetNs.Name, pod.IfName), $"{flavor}: DEL left the pod interface");
        return new Run(result, add, link, addresses, ports);
    }

    private static bool CniVersionAtLeast04(string v) => v is "0.4.0" or "1.0.0" or "1.1.0";

    [Theory]
    [MemberData(nameof(Files))]
    public async Task RealConfig_WithTypeRenamed_WorksLikeTheReference(string file)
    {
        var json = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(CorpusDir, file)))!.AsObject();
        var keys = BridgeConfig(json);
        var usesVlans = (int?)keys["vlan"] is > 0 || keys["vlanTrunk"] is JsonArray { Count: > 0 };

        var ours = await AddCheckDel(json, PluginFlavor.PodBridge);
        if (usesVlans && ours.Result is null)
        {
            // This kernel lacks bridge VLAN filtering: the clear error, nothing left (checked in AddCheckDel).
            ours.Add.AssertError(108, "CONFIG_BRIDGE_VLAN_FILTERING");
            output.WriteLine($"{file}: VLANs need CONFIG_BRIDGE_VLAN_FILTERING, which this kernel lacks: code 108, nothing left behind");
            return;
        }
        Assert.True(ours.Result is not null, $"{file}: podbridge ADD failed: {ours.Add.Stdout}");
        var r = ours.Result!;
        Assert.Equal(3 + (usesVlans && (bool?)keys["isGateway"] == true ? 1 : 0), r["interfaces"]!.AsArray().Count);
        var disabled = (bool?)keys["disableContainerInterface"] == true;
        Assert.Equal(!disabled, ours.PodLink!.IsUp);
        Assert.Equal(1, ours.BridgePorts);

        var unknown = NewerReferenceKeys.Where(k => keys.ContainsKey(k)).ToList();
        if (unknown.Count > 0)
        {
            output.WriteLine($"{file}: reference bridge 1.1.1 does not know {string.Join(", ", unknown)}; podbridge only");
            return;
        }
        var reference = await AddCheckDel(json, PluginFlavor.Reference);
        if (usesVlans)
        {
            Assert.Null(reference.Result); // the reference cannot filter VLANs on this kernel either
            return;
        }
        Assert.True(reference.Result is not null, $"{file}: reference ADD failed: {reference.Add.Stdout}");
        var rr = reference.Result!;
        Assert.Equal(rr["interfaces"]!.AsArray().Count, r["interfaces"]!.AsArray().Count);
        Assert.Equal((rr["ips"] as JsonArray)?.Count ?? 0, (r["ips"] as JsonArray)?.Count ?? 0);
        Assert.Equal(Dsts(rr), Dsts(r));
        Assert.Equal(reference.PodLink!.IsUp, ours.PodLink.IsUp);
        Assert.Equal(reference.PodLink.Mtu, ours.PodLink.Mtu);
        Assert.Equal(reference.Addresses.Count, ours.Addresses.Count);
        Assert.Equal(reference.BridgePorts, ours.BridgePorts);
        output.WriteLine($"{file}: same result shape and kernel state as the reference");

        static List<string> Dsts(JsonObject result) =>
            ((result["routes"] as JsonArray) ?? []).Select(x => (string)x!["dst"]!).Order().ToList();
    }
}
