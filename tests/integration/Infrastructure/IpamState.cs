using System.Text.Json.Nodes;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>One address an IPAM holds for an attachment.</summary>
public sealed record LeaseRecord(string Ip, string ContainerId, string IfName);

/// <summary>
/// Reads what an IPAM has on disk, so a test can see a lease taken or released directly instead of only inferring
/// it: host-local keeps one file per address (dataDir/NETWORK/IP holding "containerID\nifname"); podbridge-ipam
/// lists its database with `podbridge-ipam leases --data-dir DIR`.
/// </summary>
public static class IpamState
{
    public static async Task<IReadOnlyList<LeaseRecord>> Leases(string ipamType, TestNetwork net) => ipamType switch
    {
        "host-local" => HostLocal(net),
        "podbridge-ipam" => await PodBridgeIpam(net),
        _ => throw new ArgumentException($"cannot read leases of ipam type {ipamType}"),
    };

    public static async Task<IReadOnlyList<LeaseRecord>> LeasesOf(string ipamType, TestNetwork net, string containerId) =>
        (await Leases(ipamType, net)).Where(l => l.ContainerId == containerId).ToList();

    private static List<LeaseRecord> HostLocal(TestNetwork net)
    {
        var dir = Path.Combine(net.DataDir, net.Name);
        if (!Directory.Exists(dir)) return [];
        return Directory.GetFiles(dir)
            .Select(f => (Ip: Path.GetFileName(f), Lines: File.ReadAllLines(f)))
            .Where(x => x.Ip != "lock" && !x.Ip.StartsWith("last_reserved_ip", StringComparison.Ordinal))
            .Select(x => new LeaseRecord(x.Ip, x.Lines.ElementAtOrDefault(0)?.Trim() ?? "", x.Lines.ElementAtOrDefault(1)?.Trim() ?? ""))
            .ToList();
    }

    private static async Task<List<LeaseRecord>> PodBridgeIpam(TestNetwork net)
    {
        var r = (await Sh.Run(Binaries.PodBridgeIpam, "leases", "--data-dir", net.DataDir)).EnsureOk();
        return r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonNode.Parse(line)!)
            .Where(n => (string?)n["network"] == net.Name)
            .Select(n => new LeaseRecord((string)n["ip"]!, (string)n["containerID"]!, (string)n["ifname"]!))
            .ToList();
    }
}
