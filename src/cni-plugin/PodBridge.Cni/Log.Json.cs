using System.Globalization;
using System.Text;

namespace PodBridge.Cni;

/// <summary>
/// logFormat "json": one object per line for log shippers, with the call's context on every line (verb,
/// containerId, ifname, pod namespace/name, network) and, on the final line, the result code, total and per-step
/// durations, and the addresses handed out. logMaxSize rotates the file through <see cref="SharedFile"/>.
/// </summary>
public static partial class Log
{
    public const string FormatText = "text", FormatJson = "json";

    private sealed record CallContext(string Plugin, string Verb, string ContainerId, string IfName, string? PodNamespace, string? PodName);

    private static CallContext? Context;
    private static readonly List<(string Step, double Ms)> Steps = [];
    private static readonly List<string> Addresses = [];
    private static string _network = "";
    private static bool _json = Environment.GetEnvironmentVariable("PODBRIDGE_LOG_FORMAT") == FormatJson;
    private static long _maxSize = long.TryParse(Environment.GetEnvironmentVariable("PODBRIDGE_LOG_MAX_SIZE"), out var m) ? m : 0;
    private static int? _endCode;
    private static string? _endError;
    private static double? _endMs;

    // Step timings are collected whenever the final JSON line will carry them.
    private static bool StepsWanted => _json && _file is not null;

    /// <summary>Valid logFormat values; null and "" mean text.</summary>
    public static bool IsValidFormat(string? format) => format is null or "" or FormatText or FormatJson;

    private static void ConfigureFormat(NetConf config)
    {
        _network = config.Name ?? "";
        if (Environment.GetEnvironmentVariable("PODBRIDGE_LOG_FORMAT") is null)
        {
            // A bad value must not fail DEL (teardown has to work with the config ADD got): text, and a warning.
            if (IsValidFormat(config.LogFormat)) _json = config.LogFormat == FormatJson;
            else Warn($"logFormat: '{config.LogFormat}' is not \"text\" or \"json\"; writing text");
        }
        if (Environment.GetEnvironmentVariable("PODBRIDGE_LOG_MAX_SIZE") is null && config.LogMaxSize is int max)
        {
            if (max >= 0) _maxSize = max;
            else Warn($"logMaxSize: {max} is negative; not rotating");
        }
    }

    /// <summary>The addresses an ADD hands out, for its final JSON line.</summary>
    public static void Result(CniResult result)
    {
        foreach (var ip in result.Ips) Addresses.Add(ip.Address.ToString());
    }

    // Built by hand rather than with Utf8JsonWriter: its encoder's tables cost more to set up (once per process,
    // and every plugin call is a process) than the whole line costs to write.
    private static string JsonLine(DateTime now, LogLevel level, string msg)
    {
        var b = new StringBuilder(256);
        b.Append("{\"time\":\"").Append(now.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)).Append('"');
        Field(b, "level", LevelName(level));
        b.Append(",\"pid\":").Append(Environment.ProcessId);
        if (Context is { } c)
        {
            Field(b, "plugin", c.Plugin);
            Field(b, "verb", c.Verb);
            if (c.ContainerId.Length > 0) Field(b, "containerId", c.ContainerId);
            if (c.IfName.Length > 0) Field(b, "ifname", c.IfName);
            if (c.PodNamespace is not null) Field(b, "podNamespace", c.PodNamespace);
            if (c.PodName is not null) Field(b, "podName", c.PodName);
        }
        if (_network.Length > 0) Field(b, "network", _network);
        Field(b, "msg", msg);
        if (_endMs is double ms)
        {
            b.Append(",\"code\":").Append(_endCode ?? 0);
            b.Append(",\"durationMs\":").Append(Math.Round(ms, 3).ToString(CultureInfo.InvariantCulture));
            if (_endError is not null) Field(b, "error", _endError);
            if (Steps.Count > 0)
            {
                b.Append(",\"stepsMs\":{");
                for (var i = 0; i < Steps.Count; i++)
                {
                    if (i > 0) b.Append(',');
                    Quoted(b, Steps[i].Step).Append(':').Append(Math.Round(Steps[i].Ms, 3).ToString(CultureInfo.InvariantCulture));
                }
                b.Append('}');
            }
            if (Addresses.Count > 0)
            {
                b.Append(",\"addresses\":[");
                for (var i = 0; i < Addresses.Count; i++)
                {
                    if (i > 0) b.Append(',');
                    Quoted(b, Addresses[i]);
                }
                b.Append(']');
            }
        }
        return b.Append("}\n").ToString();
    }

    private static void Field(StringBuilder b, string name, string value)
    {
        b.Append(",\"").Append(name).Append("\":");
        Quoted(b, value);
    }

    /// <summary>A JSON string: quote, backslash and control characters escaped (RFC 8259 §7); the rest as is.</summary>
    internal static StringBuilder Quoted(StringBuilder b, string s)
    {
        b.Append('"');
        foreach (var ch in s)
        {
            switch (ch)
            {
                case '"': b.Append("\\\""); break;
                case '\\': b.Append("\\\\"); break;
                case '\n': b.Append("\\n"); break;
                case '\r': b.Append("\\r"); break;
                case '\t': b.Append("\\t"); break;
                case < ' ': b.Append("\\u").Append(((int)ch).ToString("x4", CultureInfo.InvariantCulture)); break;
                default: b.Append(ch); break;
            }
        }
        return b.Append('"');
    }
}
