using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// The IPAM section of a network config, validated: range sets (host-local schema), routes, data dir, DNS.
/// Every problem is code 7 with the config path of the offending field.
/// </summary>
public sealed record IpamSettings(
    string Network,
    IReadOnlyList<RangeSet> RangeSets,
    IReadOnlyList<CniRoute> Routes,
    string DataDir,
    CniDns Dns)
{
    public const string DefaultDataDir = "/var/lib/cni/podbridge";

    /// <summary>The full settings; ADD, CHECK and STATUS need the ranges.</summary>
    public static IpamSettings From(NetConf conf) => Parse(conf, withRanges: true);

    /// <summary>
    /// Only what DEL and GC need (network name, data dir): releasing by owner must work even when the ranges
    /// in the config have become invalid, or DEL would fail forever.
    /// </summary>
    public static IpamSettings ForRelease(NetConf conf) => Parse(conf, withRanges: false);

    private static IpamSettings Parse(NetConf conf, bool withRanges)
    {
        var keys = IpamNetConf.Read(conf);
        var ipam = keys.Ipam ?? throw Invalid("ipam: the network config has no ipam section");
        var network = conf.Name ?? throw Invalid("name: missing");
        var dataDir = string.IsNullOrEmpty(ipam.DataDir) ? DefaultDataDir : ipam.DataDir;
        if (!Path.IsPathRooted(dataDir)) throw Invalid($"ipam.dataDir: '{dataDir}' must be an absolute path");
        if (!withRanges) return new IpamSettings(network, [], [], dataDir, new CniDns());

        return new IpamSettings(network, ParseRangeSets(keys), ParseRoutes(ipam), dataDir,
            ipam.ResolvConf is { Length: > 0 } rc ? ResolvConf.Read(rc, "ipam.resolvConf") : new CniDns());
    }

    internal static CniException Invalid(string msg) => new(CniErrorCode.InvalidNetworkConfig, msg);

    /// <summary>
    /// runtimeConfig.ipRanges (if given) replaces the configured ranges; otherwise the legacy top-level
    /// subnet (as set 0) followed by ipam.ranges, as host-local orders them.
    /// </summary>
    internal static List<RangeSet> ParseRangeSets(IpamNetConf conf)
    {
        var ipam = conf.Ipam!;
        var raw = new List<(List<RangeConfig>? Set, string Path, bool Legacy)>();
        if (conf.RuntimeConfig?.IpRanges is { Count: > 0 } runtime)
        {
            for (var i = 0; i < runtime.Count; i++) raw.Add((runtime[i], $"runtimeConfig.ipRanges[{i}]", false));
        }
        else
        {
            if (ipam.Subnet is not null)
                raw.Add(([new RangeConfig { Subnet = ipam.Subnet, RangeStart = ipam.RangeStart, RangeEnd = ipam.RangeEnd, Gateway = ipam.Gateway }],
                    "ipam", true));
            else if (ipam.RangeStart is not null || ipam.RangeEnd is not null || ipam.Gateway is not null)
                throw Invalid("ipam.subnet: missing, but ipam.rangeStart/rangeEnd/gateway are set (the legacy single-range form needs a subnet)");
            if (ipam.Ranges is not null)
                for (var i = 0; i < ipam.Ranges.Count; i++) raw.Add((ipam.Ranges[i], $"ipam.ranges[{i}]", false));
        }
        if (raw.Count == 0)
            throw Invalid("ipam.ranges: no address ranges configured (set ipam.ranges, the legacy ipam.subnet, or runtimeConfig.ipRanges)");

        var sets = new List<RangeSet>(raw.Count);
        foreach (var (set, path, legacy) in raw)
        {
            if (set is null || set.Count == 0) throw Invalid($"{path}: the range set is empty");
            var ranges = new List<IpRange>(set.Count);
            for (var j = 0; j < set.Count; j++)
            {
                var rangePath = legacy ? path : $"{path}[{j}]";
                var range = ParseRange(set[j] ?? throw Invalid($"{rangePath}: null"), rangePath);
                if (ranges.Count > 0 && range.IsV6 != ranges[0].IsV6)
                    throw Invalid($"{rangePath}.subnet: {range.Subnet} is {Family(range.IsV6)} but {ranges[0].Path} is {Family(ranges[0].IsV6)}; a range set holds one address family");
                foreach (var other in ranges)
                    if (range.Overlaps(other))
                        throw Invalid($"{rangePath}: {range.Start}-{range.End} overlaps {other.Path} ({other.Start}-{other.End})");
                ranges.Add(range);
            }
            var rs = new RangeSet(sets.Count, ranges, path);
            foreach (var earlier in sets)
                foreach (var a in rs.Ranges)
                    foreach (var b in earlier.Ranges)
                        if (a.Overlaps(b))
                            throw Invalid($"{a.Path}: {a.Start}-{a.End} overlaps {b.Path} ({b.Start}-{b.End}) of another range set");
            sets.Add(rs);
        }
        return sets;
    }

    private static string Family(bool v6) => v6 ? "IPv6" : "IPv4";

    internal static IpRange ParseRange(RangeConfig rc, string path)
    {
        if (string.IsNullOrEmpty(rc.Subnet)) throw Invalid($"{path}.subnet: missing");
        if (!IpAddr.TryParseCidr(rc.Subnet, out var subnetAddr, out var prefix))
            throw Invalid($"{path}.subnet: '{rc.Subnet}' is not a subnet in CIDR form (like 10.1.0.0/16)");
        var v6 = subnetAddr.IsV6;
        var mask = IpAddr.Mask(prefix, v6);
        var network = subnetAddr with { Value = subnetAddr.Value & mask };
        if (network.Value != subnetAddr.Value)
            throw Invalid($"{path}.subnet: {rc.Subnet} has host bits set; the network address is {network}/{prefix}");
        // No usable address once the network (and, for IPv4, broadcast) address is excluded; host-local says the same.
        if (prefix > subnetAddr.Bits - 2)
            throw Invalid($"{path}.subnet: {rc.Subnet} is too small to allocate from (at most /{subnetAddr.Bits - 2} for {Family(v6)})");

        var last = network with { Value = network.Value | (~mask & subnetAddr.FamilyMax) };
        // IPv4 excludes the broadcast address; IPv6 has none, so its last address is usable (as in host-local).
        var lastUsable = v6 ? last : last.Sub(1);
        var firstUsable = network.Add(1);

        IpAddr Address(string? text, string field, IpAddr fallback)
        {
            if (text is null) return fallback;
            if (!IpAddr.TryParse(text, out var a)) throw Invalid($"{path}.{field}: '{text}' is not an IP address");
            var subnet = $"{network}/{prefix}";
            if (a.IsV6 != v6 || (a.Value & mask) != network.Value)
                throw Invalid($"{path}.{field}: {text} is outside subnet {subnet}");
            if (a == network) throw Invalid($"{path}.{field}: {text} is the network address of {subnet}");
            if (!v6 && a == last) throw Invalid($"{path}.{field}: {text} is the broadcast address of {subnet}");
            return a;
        }

        var gateway = Address(rc.Gateway, "gateway", firstUsable);
        var start = Address(rc.RangeStart, "rangeStart", firstUsable);
        var end = Address(rc.RangeEnd, "rangeEnd", lastUsable);
        if (start > end) throw Invalid($"{path}.rangeStart: {start} is after rangeEnd {end}");
        var range = new IpRange(network, prefix, start, end, gateway, path);
        if (range.Capacity == 0)
            throw Invalid($"{path}: the range {start}-{end} holds only the gateway {gateway}; nothing is left to allocate");
        return range;
    }

    private static List<CniRoute> ParseRoutes(IpamConfig ipam)
    {
        var routes = new List<CniRoute>();
        if (ipam.Routes is null) return routes;
        for (var i = 0; i < ipam.Routes.Count; i++)
        {
            var r = ipam.Routes[i] ?? throw Invalid($"ipam.routes[{i}]: null");
            if (string.IsNullOrEmpty(r.Dst)) throw Invalid($"ipam.routes[{i}].dst: missing");
            if (!IpCidr.TryParse(r.Dst, out var dst))
                throw Invalid($"ipam.routes[{i}].dst: '{r.Dst}' is not in CIDR form (like 0.0.0.0/0)");
            System.Net.IPAddress? gw = null;
            if (r.Gw is not null)
            {
                if (!IpAddr.TryParse(r.Gw, out var g)) throw Invalid($"ipam.routes[{i}].gw: '{r.Gw}' is not an IP address");
                if (g.IsV6 != dst.IsV6) throw Invalid($"ipam.routes[{i}].gw: {r.Gw} is not in the family of dst {r.Dst}");
                gw = g.ToIPAddress();
            }
            routes.Add(new CniRoute { Dst = dst, Gw = gw });
        }
        return routes;
    }
}
