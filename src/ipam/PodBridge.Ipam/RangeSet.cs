namespace PodBridge.Ipam;

/// <summary>
/// One allocatable range: [Start, End] inside Subnet, with the Gateway (skipped when inside the range).
/// Path is the config location it came from ("ipam.ranges[0][1]"), for messages.
/// </summary>
public sealed record IpRange(IpAddr Network, int Prefix, IpAddr Start, IpAddr End, IpAddr Gateway, string Path)
{
    public bool IsV6 => Network.IsV6;

    public string Subnet => $"{Network}/{Prefix}";

    public bool Contains(IpAddr a) => a.IsV6 == IsV6 && a >= Start && a <= End;

    public bool SubnetContains(IpAddr a) =>
        a.IsV6 == IsV6 && (a.Value & IpAddr.Mask(Prefix, IsV6)) == Network.Value;

    public bool GatewayInRange => Contains(Gateway);

    /// <summary>Number of allocatable addresses (the gateway excluded). UInt128: a /64 has 2^64 of them.</summary>
    public UInt128 Capacity => End.Value - Start.Value + 1 - (GatewayInRange ? UInt128.One : UInt128.Zero);

    public bool Overlaps(IpRange o) => o.IsV6 == IsV6 && Start <= o.End && o.Start <= End;

    public override string ToString() => $"{Subnet} {Start}-{End}";
}

/// <summary>A list of ranges of one family; an ADD takes exactly one address from each range set.</summary>
public sealed record RangeSet(int Index, IReadOnlyList<IpRange> Ranges, string Path)
{
    public bool IsV6 => Ranges[0].IsV6;

    public IpRange? RangeFor(IpAddr a)
    {
        foreach (var r in Ranges)
            if (r.Contains(a)) return r;
        return null;
    }

    /// <summary>Sum of the ranges' capacities, saturating (a set of several /64s does not overflow).</summary>
    public UInt128 Capacity
    {
        get
        {
            var total = UInt128.Zero;
            foreach (var r in Ranges)
            {
                var c = r.Capacity;
                total = UInt128.MaxValue - total < c ? UInt128.MaxValue : total + c;
            }
            return total;
        }
    }

    public override string ToString() => $"range set {Index} ({string.Join(", ", Ranges)})";
}
