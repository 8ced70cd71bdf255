using System.Diagnostics;
using PodBridge.Cni;
using Xunit.Abstractions;

namespace PodBridge.Ipam.Tests;

/// <summary>Runs only with PODBRIDGE_IPAM_PERF=1 (it writes 60,000 leases): prints timings, asserts correctness.</summary>
public sealed class PerfFactAttribute : FactAttribute
{
    public PerfFactAttribute()
    {
        if (Environment.GetEnvironmentVariable("PODBRIDGE_IPAM_PERF") is null) Skip = "set PODBRIDGE_IPAM_PERF=1 to run";
    }
}

public sealed class PerfTests(ITestOutputHelper output)
{
    private const int Leases = 60_000;

    /// <summary>
    /// ADD+DEL latency with the LiteDB store on an empty /16 and on a /16 holding 60,000 leases. With
    /// PODBRIDGE_IPAM_PERF_KEEP=DIR the two data dirs stay (DIR/empty, DIR/full) for timing the AOT binary.
    /// </summary>
    [PerfFact]
    public void Add_and_del_cost_does_not_grow_with_the_number_of_leases()
    {
        var keep = Environment.GetEnvironmentVariable("PODBRIDGE_IPAM_PERF_KEEP");
        var root = keep ?? H.TempDir();
        var empty = Path.Combine(root, "empty");
        var full = Path.Combine(root, "full");
        foreach (var d in new[] { empty, full }) { if (Directory.Exists(d)) Directory.Delete(d, true); Directory.CreateDirectory(d); }
        try
        {
            var sw = Stopwatch.StartNew();
            Fill(full);
            output.WriteLine($"filled {Leases} leases in {sw.Elapsed.TotalSeconds:F1}s; db {new FileInfo(Path.Combine(full, LiteDbLeaseStore.DbFileName)).Length / 1024} KiB");

            var (addE, delE) = Measure(empty);
            var (addF, delF) = Measure(full);
            output.WriteLine($"empty pool: ADD median {addE:F3} ms, DEL median {delE:F3} ms");
            output.WriteLine($"60k leases: ADD median {addF:F3} ms, DEL median {delF:F3} ms  (ratio ADD {addF / addE:F2}, DEL {delF / delE:F2})");

            // Worst case for the round-robin walk: the cursor right before a run of 60,000 held addresses.
            SetCursor(full, "10.2.0.1");
            var ipam = new PodBridgeIpam(s => new LiteDbLeaseStore(s.DataDir), new FakeProbe());
            sw.Restart();
            var r = ipam.Add(H.Req("worst"), Conf(full));
            output.WriteLine($"worst case (cursor before 60k consecutive held addresses): ADD {sw.Elapsed.TotalMilliseconds:F1} ms -> {r.Addr()}");
            Assert.Equal("10.2.234.98", r.Addr()); // first address after the 60,000 held ones (10.2.0.2 ...)
        }
        finally
        {
            if (keep is null) Directory.Delete(root, true);
        }
    }

    private static NetConf Conf(string dir) =>
        H.Conf($$"""{"type":"podbridge-ipam","dataDir":"{{dir}}","ranges":[[{"subnet":"10.2.0.0/16"}]]}""");

    private static void Fill(string dir)
    {
        var probe = new FakeProbe();
        IpAddr.TryParse("10.2.0.2", out var a);
        using var tx = new LiteDbLeaseStore(dir).Begin();
        for (var i = 0; i < Leases; i++)
        {
            var ip = a.Add((UInt128)i);
            Assert.True(tx.TryReserve(new Lease(H.Net, ip, 0, $"filler{i:x8}", "eth0")
            {
                BootId = probe.BootId, NetNsPath = $"/run/netns/filler{i}", NetNs = new NetNsId(4, (ulong)i), Created = DateTimeOffset.UtcNow,
            }));
            if (i == Leases - 1) tx.SetCursor(H.Net, 0, ip);
        }
        tx.Commit();
    }

    private static void SetCursor(string dir, string ip)
    {
        IpAddr.TryParse(ip, out var a);
        using var tx = new LiteDbLeaseStore(dir).Begin();
        tx.SetCursor(H.Net, 0, a);
        tx.Commit();
    }

    private static (double Add, double Del) Measure(string dir)
    {
        var ipam = new PodBridgeIpam(s => new LiteDbLeaseStore(s.DataDir), new FakeProbe());
        var conf = Conf(dir);
        var adds = new List<double>();
        var dels = new List<double>();
        var handedOut = new HashSet<string>();
        for (var i = 0; i < 220; i++)
        {
            var sw = Stopwatch.StartNew();
            var ip = ipam.Add(H.Req($"perf{i}"), conf).Addr();
            var add = sw.Elapsed.TotalMilliseconds;
            sw.Restart();
            ipam.Del(H.Req($"perf{i}"), conf);
            var del = sw.Elapsed.TotalMilliseconds;
            Assert.True(handedOut.Add(ip), $"{ip} handed out twice before the walk wrapped");
            if (i >= 20) { adds.Add(add); dels.Add(del); } // first ones warm up JIT and caches
        }
        return (Median(adds), Median(dels));
    }

    private static double Median(List<double> xs)
    {
        xs.Sort();
        return xs[xs.Count / 2];
    }
}
