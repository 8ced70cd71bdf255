using System.Net;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace PodBridge.Cni;

/// <summary>An address with its prefix length, as CNI writes it ("10.1.0.5/16"). The address keeps its host bits.</summary>
public readonly record struct IpCidr(IPAddress Address, int PrefixLength)
{
    public bool IsV6 => Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;

    public static IpCidr Parse(string text, string field)
    {
        if (!TryParse(text, out var cidr))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{field}: '{text}' is not an address in CIDR form (like 10.1.0.0/16)");
        return cidr;
    }

    public static bool TryParse(string? text, out IpCidr cidr)
    {
        cidr = default;
        if (string.IsNullOrEmpty(text)) return false;
        var slash = text.IndexOf('/');
        if (slash <= 0 || !TryParseAddress(text.AsSpan(0, slash), out var ip)) return false;
        if (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out var len)) return false;
        var max = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? 128 : 32;
        if (len > max) return false;
        cidr = new IpCidr(ip, len);
        return true;
    }

    public override string ToString() => $"{Address}/{PrefixLength}";

    /// <summary>
    /// A plain address as Go's net.ParseIP reads it. IPAddress.TryParse alone is too lax for config input:
    /// it reads "10.1" as 10.0.0.1, "010.1.0.5" as octal 8.1.0.5 and accepts "fe80::1%eth0" scope ids.
    /// IPv4 here is exactly four decimal octets without leading zeros; IPv6 has no scope and no brackets.
    /// </summary>
    public static bool TryParseAddress(ReadOnlySpan<char> text, out IPAddress address)
    {
        address = IPAddress.None;
        if (text.IsEmpty) return false;
        if (text.Contains(':'))
        {
            if (text.ContainsAny('%', '[', ']') || !IPAddress.TryParse(text, out var v6)
                || v6.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6) return false;
            address = v6;
            return true;
        }
        Span<byte> octets = stackalloc byte[4];
        var part = 0;
        foreach (var range in text.Split('.'))
        {
            var digits = text[range];
            if (part == 4 || digits.Length is 0 or > 3 || (digits.Length > 1 && digits[0] == '0')) return false;
            var value = 0;
            foreach (var c in digits)
            {
                if (!char.IsAsciiDigit(c)) return false;
                value = value * 10 + (c - '0');
            }
            if (value > 255) return false;
            octets[part++] = (byte)value;
        }
        if (part != 4) return false;
        address = new IPAddress(octets);
        return true;
    }

    /// <summary><see cref="TryParseAddress(ReadOnlySpan{char}, out IPAddress)"/> for a nullable string.</summary>
    public static bool TryParseAddress(string? text, out IPAddress address)
    {
        address = IPAddress.None;
        return text is not null && TryParseAddress(text.AsSpan(), out address);
    }
}

public sealed class CniInterface
{
    public required string Name { get; init; }
    public string? Mac { get; init; }
    public int? Mtu { get; init; }
    public string? Sandbox { get; init; }
}

public sealed class CniIpConfig
{
    public required IpCidr Address { get; init; }
    public IPAddress? Gateway { get; init; }
    /// <summary>Index into <see cref="CniResult.Interfaces"/>; printed even when 0.</summary>
    public int? Interface { get; set; }
}

public sealed class CniRoute
{
    public required IpCidr Dst { get; init; }
    public IPAddress? Gw { get; init; }
}

public sealed class CniDns
{
    public List<string> Nameservers { get; init; } = [];
    public string? Domain { get; init; }
    public List<string> Search { get; init; } = [];
    public List<string> Options { get; init; } = [];
    public bool IsEmpty => Nameservers.Count == 0 && string.IsNullOrEmpty(Domain) && Search.Count == 0 && Options.Count == 0;
}

/// <summary>The ADD result (and prevResult). Written in the config's cniVersion by <see cref="Write"/>.</summary>
public sealed class CniResult
{
    public List<CniInterface> Interfaces { get; init; } = [];
    public List<CniIpConfig> Ips { get; init; } = [];
    public List<CniRoute> Routes { get; init; } = [];
    public CniDns Dns { get; set; } = new();

    /// <summary>
    /// 1.0/1.1: no ips[].version, "dns" only when set. 0.3.x/0.4.0: ips[].version "4"|"6" and "dns":{} always.
    /// </summary>
    public void Write(Utf8JsonWriter w, string cniVersion)
    {
        var pre100 = CniVersion.IsPre100(cniVersion);
        w.WriteStartObject();
        w.WriteString("cniVersion", cniVersion);
        if (Interfaces.Count > 0)
        {
            w.WriteStartArray("interfaces");
            foreach (var i in Interfaces)
            {
                w.WriteStartObject();
                w.WriteString("name", i.Name);
                // Go's net.HardwareAddr prints lowercase; runtimes compare MACs as strings.
                if (!string.IsNullOrEmpty(i.Mac)) w.WriteString("mac", i.Mac.ToLowerInvariant());
                // interfaces[].mtu exists from spec 1.1.0 on; 0 means "unknown" (libcni omits it too).
                if (i.Mtu is int mtu && mtu > 0 && CniVersion.AtLeast(cniVersion, "1.1.0")) w.WriteNumber("mtu", mtu);
                if (!string.IsNullOrEmpty(i.Sandbox)) w.WriteString("sandbox", i.Sandbox);
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (Ips.Count > 0)
        {
            w.WriteStartArray("ips");
            foreach (var ip in Ips)
            {
                w.WriteStartObject();
                if (pre100) w.WriteString("version", ip.Address.IsV6 ? "6" : "4");
                if (ip.Interface is int idx) w.WriteNumber("interface", idx);
                w.WriteString("address", ip.Address.ToString());
                if (ip.Gateway is not null) w.WriteString("gateway", ip.Gateway.ToString());
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (Routes.Count > 0)
        {
            w.WriteStartArray("routes");
            foreach (var r in Routes)
            {
                w.WriteStartObject();
                w.WriteString("dst", r.Dst.ToString());
                if (r.Gw is not null) w.WriteString("gw", r.Gw.ToString());
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        if (pre100 || !Dns.IsEmpty)
        {
            w.WriteStartObject("dns");
            if (Dns.Nameservers.Count > 0) WriteStrings(w, "nameservers", Dns.Nameservers);
            if (!string.IsNullOrEmpty(Dns.Domain)) w.WriteString("domain", Dns.Domain);
            if (Dns.Search.Count > 0) WriteStrings(w, "search", Dns.Search);
            if (Dns.Options.Count > 0) WriteStrings(w, "options", Dns.Options);
            w.WriteEndObject();
        }
        w.WriteEndObject();
    }

    public byte[] ToJson(string cniVersion)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, JsonOutput))
            Write(w, cniVersion);
        return ms.ToArray();
    }

    /// <summary>
    /// How podbridge prints JSON on stdout. stdout is read by JSON parsers, never embedded in HTML, so the
    /// default encoder's escaping of ' &lt; &gt; &amp; and non-ASCII (as \u0027 ...) would only hurt readability of
    /// error messages that runtimes show verbatim.
    /// </summary>
    public static readonly JsonWriterOptions JsonOutput = new()
    {
        Indented = true,
        Encoder = CniJsonEncoder.Instance,
    };

    private static void WriteStrings(Utf8JsonWriter w, string name, List<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }

    /// <summary>Reads a result of any supported version (prevResult, or a delegated plugin's stdout).</summary>
    public static CniResult Parse(JsonElement e, string what)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new CniException(CniErrorCode.DecodingFailure, $"{what} must be a JSON object");
        var result = new CniResult();
        try
        {
            if (e.TryGetProperty("interfaces", out var ifs) && ifs.ValueKind == JsonValueKind.Array)
                foreach (var i in ifs.EnumerateArray())
                    result.Interfaces.Add(new CniInterface
                    {
                        Name = Str(i, "name") ?? throw Bad(what, "interfaces[].name is missing"),
                        Mac = Str(i, "mac"),
                        Mtu = i.TryGetProperty("mtu", out var m) && m.ValueKind == JsonValueKind.Number
                            ? m.TryGetInt32(out var mtu) && mtu >= 0 ? mtu : throw Bad(what, $"interfaces[].mtu {m.GetRawText()} is not an MTU")
                            : null,
                        Sandbox = Str(i, "sandbox"),
                    });
            if (e.TryGetProperty("ips", out var ips) && ips.ValueKind == JsonValueKind.Array)
                foreach (var ip in ips.EnumerateArray())
                {
                    result.Ips.Add(new CniIpConfig
                    {
                        Address = Cidr(ip, what, "ips[]", "address"),
                        Gateway = OptionalAddress(ip, what, "ips[]", "gateway"),
                        Interface = ip.TryGetProperty("interface", out var ix) && ix.ValueKind == JsonValueKind.Number
                            ? ix.TryGetInt32(out var idx) && idx >= 0 ? idx : throw Bad(what, $"ips[].interface {ix.GetRawText()} is not an index")
                            : null,
                    });
                }
            if (e.TryGetProperty("routes", out var routes) && routes.ValueKind == JsonValueKind.Array)
                foreach (var r in routes.EnumerateArray())
                    result.Routes.Add(new CniRoute
                    {
                        Dst = Cidr(r, what, "routes[]", "dst"),
                        Gw = OptionalAddress(r, what, "routes[]", "gw"),
                    });
            if (e.TryGetProperty("dns", out var dns) && dns.ValueKind == JsonValueKind.Object)
                result.Dns = new CniDns
                {
                    Nameservers = Strs(dns, "nameservers"),
                    Domain = Str(dns, "domain"),
                    Search = Strs(dns, "search"),
                    Options = Strs(dns, "options"),
                };
        }
        catch (InvalidOperationException ex)
        {
            throw new CniException(CniErrorCode.DecodingFailure, $"{what}: a field has the wrong type: {ex.Message}");
        }
        return result;
    }

    private static IpCidr Cidr(JsonElement e, string what, string list, string name)
    {
        var text = Str(e, name) ?? throw Bad(what, $"{list}.{name} is missing");
        return IpCidr.TryParse(text, out var cidr) ? cidr : throw Bad(what, $"{list}.{name} '{text}' is not CIDR");
    }

    private static IPAddress? OptionalAddress(JsonElement e, string what, string list, string name)
    {
        var text = Str(e, name);
        if (text is null) return null;
        return IpCidr.TryParseAddress(text, out var address) ? address : throw Bad(what, $"{list}.{name} '{text}' is not an address");
    }

    private static CniException Bad(string what, string msg) => new(CniErrorCode.DecodingFailure, $"{what}: {msg}");

    private static string? Str(JsonElement e, string name) =>
        e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    private static List<string> Strs(JsonElement e, string name)
    {
        var list = new List<string>();
        if (e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array)
            foreach (var s in v.EnumerateArray())
                if (s.ValueKind == JsonValueKind.String) list.Add(s.GetString()!);
        return list;
    }
}
