using System.Text.Json;
using System.Text.Json.Serialization;
using Versions = PodBridge.Cni.CniVersion;

namespace PodBridge.Cni;

/// <summary>
/// The network configuration on stdin: the spec's common keys only (SPEC.md "Network configuration"). A plugin's own
/// keys and the IPAM's schema are read by their owners from <see cref="Json"/> with <see cref="ConfigReader"/>.
/// Keys nobody knows are ignored (runtimes pass extras through).
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
    [JsonPropertyName("ipam")] public IpamSection? Ipam { get; set; }
    [JsonPropertyName("dns")] public DnsConfig? Dns { get; set; }
    [JsonPropertyName("prevResult")] public JsonElement? PrevResult { get; set; }
    [JsonPropertyName("runtimeConfig")] public RuntimeConfig? RuntimeConfig { get; set; }
    [JsonPropertyName("args")] public ArgsConfig? Args { get; set; }
    [JsonPropertyName("capabilities")] public Dictionary<string, bool>? Capabilities { get; set; }

    // CNI 1.1 GC: the attachments the runtime still uses ("cni.dev/attachments" is the older spelling).
    [JsonPropertyName("cni.dev/valid-attachments")] public List<GcAttachment>? ValidAttachments { get; set; }
    [JsonPropertyName("cni.dev/attachments")] public List<GcAttachment>? Attachments { get; set; }

    // podbridge's log settings: read here because the host configures the log before any plugin parses its keys.
    [JsonPropertyName("logFile")] public string? LogFile { get; set; }
    [JsonPropertyName("logLevel")] public string? LogLevel { get; set; }
    [JsonPropertyName("logFormat")] public string? LogFormat { get; set; }
    [JsonPropertyName("logMaxSize")] public int? LogMaxSize { get; set; }

    /// <summary>The version results and errors are printed in (validated by <see cref="Parse"/>).</summary>
    /// <summary>The config exactly as it came on stdin (already checked to be one well-formed JSON object).</summary>
    [JsonIgnore] public byte[] Json { get; private set; } = [];

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
        conf.Json = json;
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

/// <summary>
/// The ipam section as the protocol sees it: an object whose type names the IPAM plugin. Its other keys belong to
/// that plugin (PodBridge.Ipam reads podbridge-ipam's; a delegated plugin gets the whole config on its stdin).
/// </summary>
public sealed class IpamSection
{
    [JsonPropertyName("type")] public string? Type { get; set; }

    /// <summary>How many keys the section has: <c>"ipam": {}</c> (KubeVirt's NADs) means no IPAM, as in the reference.</summary>
    [JsonIgnore] public int KeyCount { get; set; }
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
