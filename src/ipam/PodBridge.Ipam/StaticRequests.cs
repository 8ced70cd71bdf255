using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// Addresses a runtime asked for: CNI_ARGS IP= (comma-separated), args.cni.ips, runtimeConfig.ips; each a bare
/// address or CIDR (the prefix is ignored: the range's subnet decides). Duplicates across sources collapse.
/// </summary>
public static class StaticRequests
{
    public static IReadOnlyList<IpAddr> From(CniRequest request, NetConf conf)
    {
        var result = new List<IpAddr>();
        void Add(string? text, string source, CniErrorCode code)
        {
            if (string.IsNullOrWhiteSpace(text)) return;
            var t = text.Trim();
            if (!(IpAddr.TryParseCidr(t, out var a, out _) || IpAddr.TryParse(t, out a)))
                throw new CniException(code, $"{source}: '{t}' is not an IP address");
            if (!result.Contains(a)) result.Add(a);
        }

        if (request.Args.Ip is { } ip)
            foreach (var part in ip.Split(',', StringSplitOptions.RemoveEmptyEntries))
                Add(part, "CNI_ARGS IP", CniErrorCode.InvalidEnvironmentVariables);
        if (conf.Args?.Cni?.Ips is { } argIps)
            for (var i = 0; i < argIps.Count; i++) Add(argIps[i], $"args.cni.ips[{i}]", CniErrorCode.InvalidNetworkConfig);
        if (conf.RuntimeConfig?.Ips is { } rtIps)
            for (var i = 0; i < rtIps.Count; i++) Add(rtIps[i], $"runtimeConfig.ips[{i}]", CniErrorCode.InvalidNetworkConfig);
        return result;
    }

    /// <summary>
    /// Assigns each requested address to the one range set that contains it. Outside every set, the gateway, or
    /// two for one set: code 103 naming the address.
    /// </summary>
    public static IpAddr?[] AssignToSets(IReadOnlyList<IpAddr> requested, IReadOnlyList<RangeSet> sets)
    {
        var perSet = new IpAddr?[sets.Count];
        foreach (var a in requested)
        {
            RangeSet? set = null;
            IpRange? range = null;
            foreach (var s in sets)
                if (s.RangeFor(a) is { } r) { set = s; range = r; break; }
            if (set is null || range is null)
                throw Unavailable($"requested address {a} is outside every range ({string.Join("; ", sets)})");
            if (a == range.Gateway)
                throw Unavailable($"requested address {a} is the gateway of {range.Subnet}");
            if (perSet[set.Index] is { } other)
                throw Unavailable($"requested addresses {other} and {a} are both in {set}; at most one address per range set");
            perSet[set.Index] = a;
        }
        return perSet;
    }

    internal static CniException Unavailable(string msg) => new(CniErrorCode.AddressUnavailable, msg);
}
