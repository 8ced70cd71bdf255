using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>
/// Everything a CNI network needs to be private to one test: network name, bridge name, a /24 out of
/// 10.250.0.0/16 and a /64 out of fd50:6262::/48 that no other network of this run uses (and that no route on the
/// host covers), and an IPAM data dir. Dispose deletes the bridge, whatever ports are still on it, and the data dir.
/// <para>
/// With <c>isolatedNode</c> the plugin runs inside a private netns that plays the node: the bridge and the host
/// veths live there, and host-wide sysctls (ip_forward, bridge-nf-call-iptables) are set there, not on this machine.
/// </para>
/// </summary>
public sealed class TestNetwork : IDisposable
{
    private static int _subnetCounter = RandomNumberGenerator.GetInt32(256);
    private static readonly Lock SubnetLock = new();
    private static readonly HashSet<int> UsedOctets = [];

    private int _disposed;

    private TestNetwork(string name, string bridge, int octet, string dataDir, TestNetNs? node)
    {
        Name = name;
        Bridge = bridge;
        Octet = octet;
        DataDir = dataDir;
        Node = node;
    }

    /// <summary>The CNI network name (config "name"), also host-local's lease directory under dataDir.</summary>
    public string Name { get; }
    public string Bridge { get; }
    public int Octet { get; }
    public string DataDir { get; }

    /// <summary>The private node namespace, or null when the plugin runs in this machine's namespace.</summary>
    public TestNetNs? Node { get; }
    public string? NodeNs => Node?.Name;

    public string Subnet4 => $"10.250.{Octet}.0/24";
    public string Gateway4 => $"10.250.{Octet}.1";
    public string Subnet6 => $"fd50:6262:0:{Octet:x}::/64";
    public string Gateway6 => $"fd50:6262:0:{Octet:x}::1";

    /// <summary>Address <paramref name="host"/> of the v4 /24, e.g. V4(10) = 10.250.X.10.</summary>
    public string V4(int host) => $"10.250.{Octet}.{host}";

    public static async Task<TestNetwork> Create(bool isolatedNode = false)
    {
        RunScope.EnsureInitialized();
        var node = isolatedNode ? await TestNetNs.Create() : null;
        try
        {
            var octet = await PickOctet();
            var name = RunScope.NewName();
            return new TestNetwork($"{name}-net", name, octet, RunScope.NewTempDir("ipam"), node);
        }
        catch
        {
            node?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A bridge config in the reference schema. isGateway is on (pods need a gateway to ping); everything else is
    /// the plugin default. Callers edit the returned object for their case.
    /// </summary>
    public JsonObject Config(PluginFlavor flavor, string cniVersion = "1.0.0", bool dualStack = false)
    {
        var ranges = new JsonArray(new JsonArray(Range(Subnet4)));
        if (dualStack) ranges.Add((JsonNode)new JsonArray(Range(Subnet6)));
        return new JsonObject
        {
            ["cniVersion"] = cniVersion,
            ["name"] = Name,
            ["type"] = flavor.BridgeType,
            ["bridge"] = Bridge,
            ["isGateway"] = true,
            ["ipam"] = new JsonObject
            {
                ["type"] = flavor.IpamType,
                ["dataDir"] = DataDir,
                ["ranges"] = ranges,
            },
        };
    }

    public static JsonObject Range(string subnet, string? rangeStart = null, string? rangeEnd = null, string? gateway = null)
    {
        var r = new JsonObject { ["subnet"] = subnet };
        if (rangeStart is not null) r["rangeStart"] = rangeStart;
        if (rangeEnd is not null) r["rangeEnd"] = rangeEnd;
        if (gateway is not null) r["gateway"] = gateway;
        return r;
    }

    private static async Task<int> PickOctet()
    {
        // Avoid /24s another network on this machine (an earlier run, a concurrent run, a real cluster) routes.
        var routed = (await Kernel.Routes(null, 4)).Select(r => r.Dst).ToList();
        lock (SubnetLock)
        {
            for (var i = 0; i < 256; i++)
            {
                var octet = Interlocked.Increment(ref _subnetCounter) & 0xff;
                if (UsedOctets.Contains(octet)) continue;
                if (routed.Any(d => d.StartsWith($"10.250.{octet}.", StringComparison.Ordinal))) continue;
                UsedOctets.Add(octet);
                return octet;
            }
        }
        throw new InvalidOperationException("no free /24 left in 10.250.0.0/16 for a test network");
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            if (Node is not null)
            {
                // The bridge and every host veth die with the node namespace.
                Node.Dispose();
            }
            else
            {
                foreach (var port in Kernel.Links(null, Bridge).GetAwaiter().GetResult())
                    Sh.Ip(null, "link", "delete", port.Name).GetAwaiter().GetResult();
                Sh.Ip(null, "link", "delete", Bridge).GetAwaiter().GetResult();
            }
        }
        finally
        {
            RunScope.TryDeleteDirectory(DataDir);
            lock (SubnetLock) UsedOctets.Remove(Octet);
        }
    }

    public override string ToString() => $"{Name} (bridge {Bridge}, {Subnet4}{(Node is null ? "" : $", node netns {Node.Name}")})";
}
