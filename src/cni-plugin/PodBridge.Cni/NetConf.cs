using System.Text.Json;
using System.Text.Json.Serialization;
using Versions = PodBridge.Cni.CniVersion;

namespace PodBridge.Cni;

/// <summary>
/// The network configuration on stdin: the spec's common keys, the bridge plugin's keys and the IPAM section.
/// Keys podbridge does not know are ignored (runtimes pass extras through).
/// The [JsonPropertyName] attributes name each key; <see cref="NetConfReader"/> maps them by hand (no serializer
/// metadata to build in every plugin process), and a unit test holds the two in step.
/// </summary>
public sealed class NetConf
{
    [JsonPropertyName("cniVersion")] public string? CniVersion { get; set; }
    [JsonPropertyName("cniVersions")] public List<string>? CniVersions { get; set; }
    [JsonPropertyName("name")] public string? Name { get; set; }
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("disableCheck")] public bool DisableCheck { get; set; }
    [JsonPropertyName("ipam")] public IpamConfig? Ipam { get; set; }
    [JsonPropertyName("dns")] public DnsConfig? Dns { get; set; }
    [JsonPropertyName("prevResult")] public JsonElement? PrevResult { get; set; }
    [JsonPropertyName("runtimeConfig")] public RuntimeConfig? RuntimeConfig { get; set; }
    [JsonPropertyName("args")] public ArgsConfig? Args { get; set; }
    [JsonPropertyName("capabilities")] public Dictionary<string, bool>? Capabilities { get; set; }

    // CNI 1.1 GC: the attachments the runtime still uses ("cni.dev/attachments" is the older spelling).
    [JsonPropertyName("cni.dev/valid-attachments")] public List<GcAttachment>? ValidAttachments { get; set; }
    [JsonPropertyName("cni.dev/attachments")] public List<GcAttachment>? Attachments { get; set; }

    // bridge plugin keys (README "Configuration reference")
    [JsonPropertyName("bridge")] public string? Bridge { get; set; }
    [JsonPropertyName("isGateway")] public bool IsGateway { get; set; }
    [JsonPropertyName("isDefaultGateway")] public bool IsDefaultGateway { get; set; }
    [JsonPropertyName("forceAddress")] public bool ForceAddress { get; set; }
    [JsonPropertyName("ipMasq")] public bool IpMasq { get; set; }
    [JsonPropertyName("mtu")] public int? Mtu { get; set; }
    [JsonPropertyName("hairpinMode")] public bool HairpinMode { get; set; }
    [JsonPropertyName("promiscMode")] public bool PromiscMode { get; set; }
    [JsonPropertyName("vlan")] public int? Vlan { get; set; }
    [JsonPropertyName("enabledad")] public bool EnableDad { get; set; }
    // Reference bridge keys podbridge does not implement yet: read so that a non-default value is refused
    // (code 2) instead of silently ignored — an operator who asked for MAC spoof checking must not get less.
    [JsonPropertyName("ipMasqBackend")] public string? IpMasqBackend { get; set; }
    [JsonPropertyName("vlanTrunk")] public JsonElement? VlanTrunk { get; set; }
    [JsonPropertyName("macspoofchk")] public bool MacSpoofChk { get; set; }
    [JsonPropertyName("disableContainerInterface")] public bool DisableContainerInterface { get; set; }
    [JsonPropertyName("portIsolation")] public bool PortIsolation { get; set; }

    // podbridge keys
    [JsonPropertyName("logFile")] public string? LogFile { get; set; }
    [JsonPropertyName("logLevel")] public string? LogLevel { get; set; }
    [JsonPropertyName("logFormat")] public string? LogFormat { get; set; }
    [JsonPropertyName("logMaxSize")] public int? LogMaxSize { get; set; }

    /// <summary>The version results and errors are printed in (validated by <see cref="Parse"/>).</summary>
    [JsonIgnore] public string Version => CniVersion ?? CniVersionDefault;
    private const string CniVersionDefault = "1.0.0";

    /// <summary>GC list: valid-attachments, else attachments, else empty (null means "nothing is valid").</summary>
    [JsonIgnore] public IReadOnlyList<GcAttachment> GcValidAttachments => ValidAttachments ?? Attachments ?? [];

    /// <summary>
    /// Parses and validates stdin. Syntax errors are code 6; a known key of the wrong type is code 7 naming
    /// the key; a missing or unsupported cniVersion is code 7 / 1; a missing or invalid name is code 7.
    /// </summary>
    public static NetConf Parse(byte[] json)
    {
        EnsureWellFormed(json);
        var conf = NetConfReader.Read(json);
        if (string.IsNullOrEmpty(conf.CniVersion))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "network config: cniVersion is required");
        if (!Versions.IsSupported(conf.CniVersion))
            throw new CniException(CniErrorCode.IncompatibleVersion,
                $"cniVersion {conf.CniVersion} is not supported (supported: {string.Join(", ", Versions.Supported)})");
        if (string.IsNullOrEmpty(conf.Name))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "network config: name is required");
        if (!CniEnvironment.IsValidIdentifier(conf.Name))
            throw new CniException(CniErrorCode.InvalidNetworkConfig,
                $"network config: name '{conf.Name}' is invalid: it must start with a letter or digit and contain only letters, digits, '_', '.' and '-'");
        return conf;
    }

    /// <summary>Best effort: the cniVersion of a config that may not parse, for the error object's own cniVersion.</summary>
    public static string? PeekVersion(byte[] json)
    {
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isVersion = reader.ValueTextEquals("cniVersion"u8);
                if (!reader.Read()) return null;
                // "" counts as unset, like an empty environment variable: the caller falls back to its default.
                if (isVersion) return reader.TokenType == JsonTokenType.String && reader.GetString() is { Length: > 0 } v ? v : null;
                reader.Skip();
            }
        }
        catch (JsonException) { }
        return null;
    }

    private static void EnsureWellFormed(byte[] json)
    {
        if (json.Length == 0)
            throw new CniException(CniErrorCode.DecodingFailure, "no network config on stdin");
        try
        {
            var reader = new Utf8JsonReader(json);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new CniException(CniErrorCode.DecodingFailure, "network config on stdin must be a JSON object");
            reader.Skip();
            if (reader.Read())
                throw new CniException(CniErrorCode.DecodingFailure, "network config on stdin has data after the JSON object");
        }
        catch (JsonException e)
        {
            throw new CniException(CniErrorCode.DecodingFailure, $"network config on stdin is not valid JSON: {e.Message}");
        }
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

public sealed class DnsConfig
{
    [JsonPropertyName("nameservers")] public List<string>? Nameservers { get; set; }
    [JsonPropertyName("domain")] public string? Domain { get; set; }
    [JsonPropertyName("search")] public List<string>? Search { get; set; }
    [JsonPropertyName("options")] public List<string>? Options { get; set; }
}

/// <summary>runtimeConfig: only keys declared in capabilities reach us (CONVENTIONS.md).</summary>
public sealed class RuntimeConfig
{
    [JsonPropertyName("ips")] public List<string>? Ips { get; set; }
    [JsonPropertyName("mac")] public string? Mac { get; set; }
    [JsonPropertyName("ipRanges")] public List<List<RangeConfig>>? IpRanges { get; set; }
}

public sealed class ArgsConfig
{
    [JsonPropertyName("cni")] public CniArgsConfig? Cni { get; set; }
}

public sealed class CniArgsConfig
{
    [JsonPropertyName("ips")] public List<string>? Ips { get; set; }
    [JsonPropertyName("mac")] public string? Mac { get; set; }
}

public sealed class GcAttachment
{
    [JsonPropertyName("containerID")] public string? ContainerId { get; set; }
    [JsonPropertyName("ifname")] public string? IfName { get; set; }
}
