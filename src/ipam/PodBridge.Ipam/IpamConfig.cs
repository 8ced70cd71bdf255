using System.Text.Json.Serialization;
using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// The IPAM's keys of a network config (host-local's schema): the ipam section and runtimeConfig.ipRanges. Read
/// from the same stdin bytes as the common keys (<see cref="NetConf.Json"/>); <see cref="IpamSettings"/> validates.
/// A key of the wrong type is code 7 naming its path ("ipam.ranges[0][1].subnet").
/// </summary>
public sealed class IpamNetConf
{
    [JsonPropertyName("ipam")] public IpamConfig? Ipam { get; set; }
    [JsonPropertyName("runtimeConfig")] public IpamRuntimeConfig? RuntimeConfig { get; set; }

    public static IpamNetConf Read(NetConf conf) => ConfigReader.Read(conf.Json, new IpamNetConf(), Key);

    private static void Key(ref ConfigReader r, IpamNetConf c)
    {
        if (r.Key("ipam"u8)) c.Ipam = r.ReadObject(new IpamConfig(), IpamKey);
        else if (r.Key("runtimeConfig"u8)) c.RuntimeConfig = r.ReadObject(new IpamRuntimeConfig(), RuntimeConfigKey);
        else r.Skip();
    }

    private static void IpamKey(ref ConfigReader r, IpamConfig c)
    {
        if (r.Key("type"u8)) c.Type = r.ReadString();
        else if (r.Key("ranges"u8)) c.Ranges = ReadRangeSets(ref r);
        else if (r.Key("subnet"u8)) c.Subnet = r.ReadString();
        else if (r.Key("rangeStart"u8)) c.RangeStart = r.ReadString();
        else if (r.Key("rangeEnd"u8)) c.RangeEnd = r.ReadString();
        else if (r.Key("gateway"u8)) c.Gateway = r.ReadString();
        else if (r.Key("routes"u8)) c.Routes = r.ReadList(Route);
        else if (r.Key("dataDir"u8)) c.DataDir = r.ReadString();
        else if (r.Key("resolvConf"u8)) c.ResolvConf = r.ReadString();
        else r.Skip();
    }

    private static void RuntimeConfigKey(ref ConfigReader r, IpamRuntimeConfig c)
    {
        if (r.Key("ipRanges"u8)) c.IpRanges = ReadRangeSets(ref r);
        else r.Skip();
    }

    // Element readers end in "!": a JSON null inside a list stays a null element (IpamSettings names it).
    private static List<List<RangeConfig>>? ReadRangeSets(ref ConfigReader r) => r.ReadList(static (ref x) => x.ReadList(Range)!);

    private static RangeConfig Range(ref ConfigReader r) => r.ReadObject(new RangeConfig(), RangeKey)!;

    private static void RangeKey(ref ConfigReader r, RangeConfig c)
    {
        if (r.Key("subnet"u8)) c.Subnet = r.ReadString();
        else if (r.Key("rangeStart"u8)) c.RangeStart = r.ReadString();
        else if (r.Key("rangeEnd"u8)) c.RangeEnd = r.ReadString();
        else if (r.Key("gateway"u8)) c.Gateway = r.ReadString();
        else r.Skip();
    }

    private static RouteConfig Route(ref ConfigReader r) => r.ReadObject(new RouteConfig(), RouteKey)!;

    private static void RouteKey(ref ConfigReader r, RouteConfig c)
    {
        if (r.Key("dst"u8)) c.Dst = r.ReadString();
        else if (r.Key("gw"u8)) c.Gw = r.ReadString();
        else r.Skip();
    }
}

public sealed class IpamConfig
{
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("ranges")] public List<List<RangeConfig>>? Ranges { get; set; }
    // legacy single-range form
    [JsonPropertyName("subnet")] public string? Subnet { get; set; }
    [JsonPropertyName("rangeStart")] public string? RangeStart { get; set; }
    [JsonPropertyName("rangeEnd")] public string? RangeEnd { get; set; }
    [JsonPropertyName("gateway")] public string? Gateway { get; set; }
    [JsonPropertyName("routes")] public List<RouteConfig>? Routes { get; set; }
    [JsonPropertyName("dataDir")] public string? DataDir { get; set; }
    [JsonPropertyName("resolvConf")] public string? ResolvConf { get; set; }
}

/// <summary>runtimeConfig.ipRanges (capability "ipRanges"): replaces the configured ranges.</summary>
public sealed class IpamRuntimeConfig
{
    [JsonPropertyName("ipRanges")] public List<List<RangeConfig>>? IpRanges { get; set; }
}

public sealed class RangeConfig
{
    [JsonPropertyName("subnet")] public string? Subnet { get; set; }
    [JsonPropertyName("rangeStart")] public string? RangeStart { get; set; }
    [JsonPropertyName("rangeEnd")] public string? RangeEnd { get; set; }
    [JsonPropertyName("gateway")] public string? Gateway { get; set; }
}

public sealed class RouteConfig
{
    [JsonPropertyName("dst")] public string? Dst { get; set; }
    [JsonPropertyName("gw")] public string? Gw { get; set; }
}
