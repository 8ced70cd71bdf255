using System.Net.Sockets;
using System.Text.Json;
using PodBridge.Cni;
using PodBridge.Ipam;
using PodBridge.Netlink;

namespace PodBridge.Plugin.Cli;

/// <summary><c>podbridge leases</c>, <c>gc</c> and <c>explain</c>: the lease stores and kernel state of this node's networks.</summary>
internal static class NodeCommands
{
    public static int Leases(CliOptions options, TextWriter stdout)
    {
        using var rt = RtNetlinkSocket.Open();
        var states = NetworkState.ReadAll(options, rt);
        try
        {
            var liveness = new LeaseLiveness(LinuxHostProbe.Instance);
            var rows = new List<(Lease Lease, string? Why)>();
            var failed = false;
            foreach (var s in states)
            {
                if (s.StoreError is not null)
                {
                    Console.Error.WriteLine($"podbridge leases: network {s.Network.Name}: {s.StoreError}");
                    failed = true;
                }
                foreach (var l in s.Leases) rows.Add((l, liveness.WhyDead(l)));
            }
            if (options.Json)
            {
                foreach (var (l, why) in rows)
                {
                    using var ms = new MemoryStream();
                    using (var w = new Utf8JsonWriter(ms)) IpamAdmin.WriteLease(w, l, why, HostVeth.Name(l.ContainerId, l.IfName));
                    stdout.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
                }
            }
            else
            {
                var table = new List<string[]> { new[] { "NETWORK", "ADDRESS", "CONTAINER", "IFNAME", "POD", "HOST VETH", "AGE", "STATE" } };
                foreach (var (l, why) in rows)
                    table.Add([l.Network, l.Address.ToString(), Short(l.ContainerId), l.IfName,
                        l.PodName is null ? "-" : $"{l.PodNamespace}/{l.PodName}", HostVeth.Name(l.ContainerId, l.IfName),
                        Age(l.Created), why is null ? "live" : $"dead: {why}"]);
                PrintTable(stdout, table);
                if (states.Count == 0) Console.Error.WriteLine($"no podbridge network with podbridge-ipam in {options.ConfDir}");
            }
            return failed ? 1 : 0;
        }
        finally
        {
            foreach (var s in states) s.Dispose();
        }
    }

    /// <summary>
    /// Releases the leases of provably dead pods and removes their host veths and masquerade elements, plus host
    /// veths on our bridges that no lease names. All decisions for a network are made under its store's lock.
    /// </summary>
    public static int Gc(CliOptions options, TextWriter stdout)
    {
        using var rt = RtNetlinkSocket.Open();
        var states = NetworkState.ReadAll(options, rt);
        var verb = options.DryRun ? "would " : "";
        var actions = 0;
        var failed = false;
        try
        {
            foreach (var s in states)
            {
                if (s.StoreError is not null)
                {
                    stdout.WriteLine($"network {s.Network.Name}: skipped, the lease store cannot be read: {s.StoreError}");
                    failed = true;
                    continue;
                }
                var veths = s.OrphanVeths();
                var masq = s.OrphanMasquerade();
                foreach (var d in s.Dead)
                {
                    foreach (var l in d.Leases)
                        stdout.WriteLine($"network {s.Network.Name}: {verb}release {NetworkState.Describe(l)}: {d.Why}");
                    if (!options.DryRun) LeaseSweep.Release(s.Tx!, d);
                    actions++;
                }
                foreach (var (link, why) in veths)
                {
                    stdout.WriteLine($"network {s.Network.Name}: {verb}delete veth {link.Name} on bridge {s.Network.Bridge}: {why}");
                    if (!options.DryRun) rt.DeleteLink(link.Name);
                    actions++;
                }
                if (masq.Count > 0)
                {
                    foreach (var (_, address) in masq)
                        stdout.WriteLine($"network {s.Network.Name}: {verb}remove masquerade element {address}: no live lease holds it");
                    if (!options.DryRun) Masquerade.Gc(s.Network.Name, s.LiveAttachments());
                    actions += masq.Count;
                }
                if (!options.DryRun && s.Dead.Count > 0) s.Tx!.Commit();
            }
        }
        finally
        {
            foreach (var s in states) s.Dispose();
        }
        if (actions == 0) stdout.WriteLine("nothing to collect");
        return failed ? 1 : 0;
    }

    public static int Explain(CliOptions options, string containerId, TextWriter stdout)
    {
        using var rt = RtNetlinkSocket.Open();
        var states = NetworkState.ReadAll(options, rt);
        try
        {
            var liveness = new LeaseLiveness(LinuxHostProbe.Instance);
            var found = false;
            foreach (var s in states)
            {
                var mine = s.Leases.Where(l => l.ContainerId.StartsWith(containerId, StringComparison.Ordinal)).ToList();
                foreach (var group in mine.GroupBy(l => (l.ContainerId, l.IfName)))
                {
                    found = true;
                    var first = group.First();
                    stdout.WriteLine($"container {first.ContainerId} interface {first.IfName} in network {s.Network.Name} ({s.Network.File})");
                    if (first.PodName is not null) stdout.WriteLine($"  pod        {first.PodNamespace}/{first.PodName}");
                    foreach (var l in group)
                        stdout.WriteLine($"  lease      {l.Address} (range set {l.RangeSet}) since {l.Created.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}");
                    var why = liveness.WhyDead(first);
                    stdout.WriteLine($"  netns      {first.NetNsPath} ({(why is null ? "present" : why)})");
                    if (why is not null) stdout.WriteLine("             the pod is gone; `podbridge gc` releases its lease and veth");
                    ExplainHost(stdout, s, rt, first);
                    if (why is null) ExplainPod(stdout, first);
                    if (s.Network.Config.Bridge.IpMasq)
                    {
                        stdout.WriteLine($"  masquerade nftables set {MasqueradeNft.Table} " +
                            string.Join(", ", group.Select(l => s.SubnetOf(l) is { } sub ? MasqueradeNft.SetName(s.Network.Name, sub) : "?")));
                    }
                    ExplainLog(stdout, s.Network.Config.Conf.LogFile, first.ContainerId);
                }
            }
            if (!found)
            {
                stdout.WriteLine($"no lease of a container {containerId}* in {string.Join(", ", states.Select(s => s.Network.Name))}");
                // Without a lease a veth can still be there: its name is a function of (containerID, ifname).
                var veth = HostVeth.Name(containerId, "eth0");
                if (rt.GetLink(veth) is { } link)
                    stdout.WriteLine($"  but host veth {veth} (for {containerId}/eth0) exists, ifindex {link.Index}: a leak `podbridge gc` removes");
                return 1;
            }
            return 0;
        }
        finally
        {
            foreach (var s in states) s.Dispose();
        }
    }

    private static void ExplainHost(TextWriter stdout, NetworkState s, RtNetlinkSocket rt, Lease lease)
    {
        var name = HostVeth.Name(lease.ContainerId, lease.IfName);
        var link = rt.GetLink(name);
        if (link is null)
        {
            stdout.WriteLine($"  host veth  {name} is missing: the pod has no network (CHECK fails; the runtime must recreate the sandbox)");
            return;
        }
        var master = link.MasterIndex is int m ? rt.GetLink(m)?.Name ?? $"ifindex {m}" : "no bridge";
        stdout.WriteLine($"  host veth  {name} ifindex {link.Index} {(link.IsUp ? "up" : "DOWN")} mtu {link.Mtu} mac {link.MacString} on {master}" +
            (master == s.Network.Bridge ? "" : $" (expected bridge {s.Network.Bridge})"));
    }

    private static void ExplainPod(TextWriter stdout, Lease lease)
    {
        try
        {
            using var ns = NetNsHandle.Open(lease.NetNsPath);
            using var pod = RtNetlinkSocket.OpenIn(ns);
            if (pod.GetLink(lease.IfName) is not { } link)
            {
                stdout.WriteLine($"  pod iface  {lease.IfName} is missing in {lease.NetNsPath}");
                return;
            }
            stdout.WriteLine($"  pod iface  {link.Name} ifindex {link.Index} {(link.IsUp ? "up" : "DOWN")} mtu {link.Mtu} mac {link.MacString}");
            foreach (var a in pod.ListAddresses(link.Index))
                stdout.WriteLine($"  address    {a.Address}/{a.PrefixLength}");
            foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
                foreach (var r in pod.ListRoutes(family).Where(r => r.OutIndex == link.Index && r.Table == 254))
                    stdout.WriteLine($"  route      {r.Destination}/{r.PrefixLength}{(r.Gateway is null ? "" : $" via {r.Gateway}")} dev {link.Name}");
        }
        catch (NetlinkException e)
        {
            stdout.WriteLine($"  pod netns  cannot be inspected: {e.Message}");
        }
    }

    private static void ExplainLog(TextWriter stdout, string? logFile, string containerId)
    {
        logFile = Environment.GetEnvironmentVariable("PODBRIDGE_LOG_FILE") ?? logFile;
        if (string.IsNullOrEmpty(logFile) || !File.Exists(logFile))
        {
            stdout.WriteLine("  log        no logFile configured for this network");
            return;
        }
        // Text lines carry the first 12 characters of the id, JSON lines all of it.
        var key = containerId.Length > 12 ? containerId[..12] : containerId;
        var lines = new List<string>();
        foreach (var file in new[] { logFile + ".1", logFile })
            if (File.Exists(file)) lines.AddRange(File.ReadLines(file).Where(l => l.Contains(key, StringComparison.Ordinal)));
        stdout.WriteLine($"  log        last {Math.Min(10, lines.Count)} of {lines.Count} line(s) in {logFile}:");
        foreach (var l in lines.TakeLast(10)) stdout.WriteLine($"    {l}");
    }

    private static string Short(string id) => id.Length > 12 ? id[..12] : id;

    private static string Age(DateTimeOffset created)
    {
        var age = DateTimeOffset.UtcNow - created;
        return age.TotalDays >= 1 ? $"{(int)age.TotalDays}d" : age.TotalHours >= 1 ? $"{(int)age.TotalHours}h" :
            age.TotalMinutes >= 1 ? $"{(int)age.TotalMinutes}m" : $"{Math.Max(0, (int)age.TotalSeconds)}s";
    }

    public static void PrintTable(TextWriter stdout, List<string[]> rows)
    {
        var widths = new int[rows[0].Length];
        foreach (var r in rows)
            for (var i = 0; i < r.Length; i++) widths[i] = Math.Max(widths[i], r[i].Length);
        foreach (var r in rows)
            stdout.WriteLine(string.Join("  ", r.Select((c, i) => i == r.Length - 1 ? c : c.PadRight(widths[i]))).TrimEnd());
    }
}
