using System.Diagnostics;
using PodBridge.Ipam;

namespace PodBridge.Bench;

/// <summary>
/// Fills a pool with <c>count</c> leases at offsets 2..count+1 (offset 1 is the gateway), as if that many
/// pods had been added one after another: the round-robin cursor ends on the last one.
/// </summary>
internal interface IPoolSeeder
{
    /// <summary>Returns a one-line description of how the pool was seeded.</summary>
    string Seed(BenchNetwork network, int count);
}

internal static class SeedIds
{
    public static string ContainerId(int i) => $"seed{i:x60}";
}

/// <summary>
/// Writes host-local's disk store directly (plugins/ipam/host-local/backend/disk, v1.1.1):
/// one file per address, dataDir/&lt;network&gt;/&lt;ip&gt;, holding "&lt;containerID&gt;\r\n&lt;ifname&gt;",
/// plus last_reserved_ip.&lt;rangeset index&gt; holding the last reserved address.
/// </summary>
internal sealed class HostLocalSeeder : IPoolSeeder
{
    public string Seed(BenchNetwork network, int count)
    {
        var dir = Path.Combine(network.DataDir, network.Name);
        Directory.CreateDirectory(dir);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < count; i++)
        {
            var ip = network.AddressAt(i + 2).ToString();
            File.WriteAllText(Path.Combine(dir, ip), $"{SeedIds.ContainerId(i)}\r\n{Cni.IfName}");
        }
        File.WriteAllText(Path.Combine(dir, "last_reserved_ip.0"), network.AddressAt(count + 1).ToString());
        return $"{count} lease files written directly in {sw.Elapsed.TotalSeconds:F1} s";
    }
}

/// <summary>
/// Seeds podbridge's lease store through the IPAM library's store API (the code the plugin itself runs),
/// in a few large transactions instead of 60k plugin invocations. Each lease looks like a live pod's:
/// this boot, no netns recorded (so it is never reclaimed as provably dead).
/// </summary>
internal sealed class PodbridgeSeeder : IPoolSeeder
{
    private const int LeasesPerTransaction = 10_000;

    public string Seed(BenchNetwork network, int count)
    {
        var sw = Stopwatch.StartNew();
        var store = new LiteDbLeaseStore(network.DataDir);
        var bootId = LinuxHostProbe.Instance.BootId;
        var created = DateTimeOffset.UtcNow;
        for (int done = 0; done < count;)
        {
            using var tx = store.Begin();
            int end = Math.Min(count, done + LeasesPerTransaction);
            for (; done < end; done++)
            {
                var lease = new Lease(network.Name, IpAddr.FromIPAddress(network.AddressAt(done + 2)), 0, SeedIds.ContainerId(done), Cni.IfName)
                {
                    PodNamespace = "bench-seed",
                    PodName = $"seed-{done}",
                    BootId = bootId,
                    Created = created,
                };
                if (!tx.TryReserve(lease))
                    throw new PluginFailure($"seeding: {lease.Address} was already held in {network.DataDir}");
            }
            tx.SetCursor(network.Name, 0, IpAddr.FromIPAddress(network.AddressAt(done + 1)));
            tx.Commit();
        }
        return $"{count} leases written through LiteDbLeaseStore in {sw.Elapsed.TotalSeconds:F1} s";
    }
}
