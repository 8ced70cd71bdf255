using System.Net;
using System.Text;
using System.Text.RegularExpressions;
using PodBridge.Cni;
using PodBridge.Ipam;
using PodBridge.Netlink;

namespace PodBridge.Plugin.Cli;

/// <summary>
/// What this node holds for one podbridge network, read in one go: its leases (inside the store's flock, kept
/// open while <see cref="Dispose"/> has not run, so gc decides and acts on one consistent picture: ADD commits a
/// lease before it creates the veth, and DEL deletes the veth before the lease), the veths on its bridge, and the
/// masquerade elements.
/// </summary>
internal sealed partial class NetworkState : IDisposable
{
    public PodNetwork Network { get; }
    public ILeaseTransaction? Tx { get; }
    public IReadOnlyList<Lease> Leases { get; } = [];
    public List<LeaseSweep.DeadOwner> Dead { get; } = [];
    public LinkInfo? BridgeLink { get; }
    public List<LinkInfo> Veths { get; } = [];
    public string? StoreError { get; }
    public bool StoreExists { get; }

    public NetworkState(PodNetwork network, IReadOnlyList<LinkInfo> links)
    {
        Network = network;
        BridgeLink = links.FirstOrDefault(l => l.Name == network.Bridge);
        if (BridgeLink is not null)
            Veths.AddRange(links.Where(l => l.MasterIndex == BridgeLink.Index && l.Kind == "veth"));
        if (network.Ipam is not { } ipam) return;
        var store = new LiteDbLeaseStore(ipam.DataDir);
        StoreExists = File.Exists(store.DbPath);
        if (!StoreExists) return;
        try
        {
            Tx = store.Begin();
            Leases = Tx.List(network.Name);
            Dead = LeaseSweep.Dead(Leases, new LeaseLiveness(LinuxHostProbe.Instance));
        }
        catch (CniException e)
        {
            Tx?.Dispose();
            Tx = null;
            StoreError = e.Message + (e.Details is null ? "" : $" ({e.Details})");
        }
    }

    [GeneratedRegex("^veth[0-9a-f]{8}$")]
    private static partial Regex HostVethName();

    /// <summary>
    /// Host veths on the bridge that no live lease accounts for: named like ours, and either without any lease or
    /// belonging to a dead attachment. Only for networks with podbridge's IPAM (else there are no leases to compare).
    /// </summary>
    public List<(LinkInfo Link, string Why)> OrphanVeths()
    {
        var orphans = new List<(LinkInfo, string)>();
        if (Network.Ipam is null || Tx is null) return orphans;
        var live = Leases.Select(l => HostVeth.Name(l.ContainerId, l.IfName)).ToHashSet();
        var dead = Dead.ToDictionary(d => HostVeth.Name(d.ContainerId, d.IfName), d => d);
        foreach (var v in Veths)
        {
            if (!HostVethName().IsMatch(v.Name)) continue;
            if (dead.TryGetValue(v.Name, out var d)) orphans.Add((v, $"its pod {d.ContainerId}/{d.IfName} is gone: {d.Why}"));
            else if (!live.Contains(v.Name)) orphans.Add((v, "no lease names it (a leaked veth)"));
        }
        return orphans;
    }

    /// <summary>Masquerade elements (address, subnet) of this network's sets that no live lease holds.</summary>
    public List<(IpCidr Subnet, IPAddress Address)> OrphanMasquerade()
    {
        var orphans = new List<(IpCidr, IPAddress)>();
        if (Network.Ipam is not { } ipam || Tx is null || !Network.Config.Bridge.IpMasq) return orphans;
        var sets = MasqueradeSets();
        var deadAddresses = Dead.SelectMany(d => d.Leases).Select(l => l.Address).ToHashSet();
        var held = Leases.Select(l => l.Address).Where(a => !deadAddresses.Contains(a)).ToHashSet();
        foreach (var set in ipam.RangeSets)
            foreach (var range in set.Ranges)
            {
                var subnet = new IpCidr(range.Network.ToIPAddress(), range.Prefix);
                if (!sets.TryGetValue(MasqueradeNft.SetName(Network.Name, subnet), out var elems)) continue;
                foreach (var e in elems)
                    if (!held.Contains(IpAddr.FromIPAddress(e)) && !orphans.Contains((subnet, e))) orphans.Add((subnet, e));
            }
        return orphans;
    }

    /// <summary>
    /// Set name → elements of podbridge's nftables table, read over netlink (no nft binary needed); empty when the
    /// table does not exist or nf_tables cannot be read here.
    /// </summary>
    private static Dictionary<string, List<IPAddress>> MasqueradeSets()
    {
        try
        {
            using var nft = PodBridge.Netlink.Nftables.NfTablesSocket.Open();
            return MasqueradeNft.ReadSets(nft).ToDictionary(s => s.Key, s => s.Value.Select(e => e.Address).ToList());
        }
        catch (NetlinkException) { return []; }
    }

    /// <summary>The attachments whose lease is live: everything masqueraded for any other one is garbage.</summary>
    public List<GcAttachment> LiveAttachments()
    {
        var dead = Dead.Select(d => (d.ContainerId, d.IfName)).ToHashSet();
        return Leases.Select(l => (l.ContainerId, l.IfName)).Where(a => !dead.Contains(a)).Distinct()
            .Select(a => new GcAttachment { ContainerId = a.ContainerId, IfName = a.IfName }).ToList();
    }

    /// <summary>The subnet (host bits cleared) of a lease's range, for its masquerade set.</summary>
    public IpCidr? SubnetOf(Lease lease)
    {
        if (Network.Ipam is null || lease.RangeSet >= Network.Ipam.RangeSets.Count) return null;
        var range = Network.Ipam.RangeSets[lease.RangeSet].Ranges.FirstOrDefault(r => r.SubnetContains(lease.Address));
        return range is null ? null : new IpCidr(range.Network.ToIPAddress(), range.Prefix);
    }

    public void Dispose() => Tx?.Dispose();

    /// <summary>Reads every podbridge network of the conf dir (filtered by --network) with the links of this netns.</summary>
    public static List<NetworkState> ReadAll(CliOptions options, RtNetlinkSocket rt)
    {
        var links = rt.ListLinks();
        return ConfDir.Networks(options.ConfDir, options.DataDir)
            .Where(n => options.Network is null || n.Name == options.Network)
            .Select(n => new NetworkState(n, links))
            .ToList();
    }

    public static string Describe(Lease l) =>
        new StringBuilder($"{l.Address} of {l.ContainerId}/{l.IfName}")
            .Append(l.PodName is null ? "" : $" (pod {l.PodNamespace}/{l.PodName})").ToString();
}
