using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

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

    private static readonly JsonWriterOptions JsonOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

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

    private static string JsonLine(DateTime now, LogLevel level, string msg)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, JsonOptions))
        {
            w.WriteStartObject();
            w.WriteString("time", now.ToString("yyyy-MM-ddTHH:mm:ss.fffZ"));
            w.WriteString("level", LevelName(level));
            w.WriteNumber("pid", Environment.ProcessId);
            if (Context is { } c)
            {
                w.WriteString("plugin", c.Plugin);
                w.WriteString("verb", c.Verb);
                if (c.ContainerId.Length > 0) w.WriteString("containerId", c.ContainerId);
                if (c.IfName.Length > 0) w.WriteString("ifname", c.IfName);
                if (c.PodNamespace is not null) w.WriteString("podNamespace", c.PodNamespace);
                if (c.PodName is not null) w.WriteString("podName", c.PodName);
            }
            if (_network.Length > 0) w.WriteString("network", _network);
            w.WriteString("msg", msg);
            if (_endMs is double ms)
            {
                w.WriteNumber("code", _endCode ?? 0);
                w.WriteNumber("durationMs", Math.Round(ms, 3));
                if (_endError is not null) w.WriteString("error", _endError);
                if (Steps.Count > 0)
                {
                    w.WriteStartObject("stepsMs");
                    foreach (var (step, stepMs) in Steps) w.WriteNumber(step, Math.Round(stepMs, 3));
                    w.WriteEndObject();
                }
                if (Addresses.Count > 0)
                {
                    w.WriteStartArray("addresses");
                    foreach (var a in Addresses) w.WriteStringValue(a);
                    w.WriteEndArray();
                }
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan) + "\n";
    }
}
