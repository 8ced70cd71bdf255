using System.Text.Json;

namespace PodBridge.Cni;

/// <summary>
/// The protocol layer around a plugin: environment + stdin in, exactly one JSON document (or nothing) out.
/// The only catch-all of the process lives here: anything thrown becomes an error JSON on stdout, never a
/// stack trace. I/O is injectable so the protocol is unit-testable without root. Every document printed on stdout
/// ends with a newline, so on a terminal it does not run into a log line that follows on stderr.
/// </summary>
public static class CniHost
{
    public sealed record Io(Func<string, string?> GetEnv, Func<byte[]> ReadStdin, Stream Stdout);

    /// <summary>The process's environment and its stdin/stdout descriptors, used raw (see <see cref="RawStdio"/>).</summary>
    public static Io ProcessIo() => new(Environment.GetEnvironmentVariable, () => RawStdio.ReadAll(0), new RawStdio.FdWriter(1));

    public static int Run(string pluginName, ICniPlugin plugin, Io io)
    {
        string errorVersion = CniVersion.Latest;
        CniRequest? request = null;
        var stdinRead = false;
        byte[] ReadStdinOnce()
        {
            stdinRead = true;
            return io.ReadStdin();
        }
        try
        {
            request = CniEnvironment.Parse(io.GetEnv, ReadStdinOnce);
            if (request.StdinConfig.Length > 0) errorVersion = NetConf.PeekVersion(request.StdinConfig) ?? errorVersion;

            if (request.Verb == CniVerb.Version)
            {
                // Nothing is logged for VERSION: runtimes call it often, and it has no attachment to name.
                WriteVersion(io.Stdout, errorVersion);
                return 0;
            }
            Log.Begin(pluginName, request);

            var config = NetConf.Parse(request.StdinConfig);
            errorVersion = config.Version;
            Log.Configure(config);
            RequireVersion(request.Verb, config.Version);

            switch (request.Verb)
            {
                case CniVerb.Add:
                    var result = plugin.Add(request, config);
                    Log.Result(result);
                    WriteDocument(io.Stdout, result.ToJson(config.Version));
                    break;
                case CniVerb.Del: plugin.Del(request, config); break;
                case CniVerb.Check: plugin.Check(request, config); break;
                case CniVerb.Gc: plugin.Gc(request, config); break;
                case CniVerb.Status: plugin.Status(request, config); break;
            }
            Log.End(0, null);
            return 0;
        }
        catch (CniException e)
        {
            // An invalid CNI_* variable is found before stdin is read, but the error should still speak the
            // config's cniVersion. Only for verbs that carry a config: a bare `podbridge` run by hand
            // (no CNI_COMMAND) must not block reading a terminal.
            if (request is null && !stdinRead && io.GetEnv(CniEnvironment.Command) is "ADD" or "DEL" or "CHECK" or "GC" or "STATUS")
            {
                try { errorVersion = ReadStdinOnce() is { Length: > 0 } stdin ? NetConf.PeekVersion(stdin) ?? errorVersion : errorVersion; }
                catch (IOException) { }
            }
            WriteError(io.Stdout, errorVersion, (int)e.Code, e.Message, e.Details);
            Log.End((int)e.Code, e.Message + (e.Details is null ? "" : $" ({e.Details})"));
            return 1;
        }
        catch (Exception e)
        {
            // Unexpected: code 999 with the message; the stack trace goes to the log, never to stdout.
            WriteError(io.Stdout, errorVersion, (int)CniErrorCode.Internal, $"internal error: {e.Message}", e.GetType().Name);
            Log.End((int)CniErrorCode.Internal, e.ToString());
            return 1;
        }
        finally
        {
            io.Stdout.Flush();
            Log.Flush();
        }
    }

    private static void RequireVersion(CniVerb verb, string version)
    {
        var minimum = verb switch
        {
            CniVerb.Check => "0.4.0",
            CniVerb.Gc or CniVerb.Status => "1.1.0",
            _ => null,
        };
        if (minimum is not null && !CniVersion.AtLeast(version, minimum))
            throw new CniException(CniErrorCode.IncompatibleVersion,
                $"{verb.ToString().ToUpperInvariant()} needs cniVersion {minimum} or later; the config has {version}");
    }

    /// <summary>
    /// The VERSION document, byte for byte what a JSON writer would print, built without one: VERSION is the verb
    /// runtimes call most (every plugin of every conflist), so it is pure start-up plus one write.
    /// </summary>
    public static void WriteVersion(Stream stdout, string cniVersion)
    {
        if (!IsPlainVersion(cniVersion))
        {
            // Anything that would need escaping goes through the writer.
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, CniResult.JsonOutput))
            {
                w.WriteStartObject();
                w.WriteString("cniVersion", cniVersion);
                w.WriteStartArray("supportedVersions");
                foreach (var v in CniVersion.Supported) w.WriteStringValue(v);
                w.WriteEndArray();
                w.WriteEndObject();
            }
            WriteDocument(stdout, ms.ToArray());
            return;
        }
        Span<byte> doc = stackalloc byte[VersionHead.Length + cniVersion.Length + VersionTail.Length + 1];
        VersionHead.CopyTo(doc);
        var n = VersionHead.Length;
        foreach (var c in cniVersion) doc[n++] = (byte)c;
        VersionTail.CopyTo(doc[n..]);
        doc[^1] = (byte)'\n';
        stdout.Write(doc);
    }

    private static ReadOnlySpan<byte> VersionHead => "{\n  \"cniVersion\": \""u8;

    // Must list CniVersion.Supported (a unit test compares it with the writer's output).
    private static ReadOnlySpan<byte> VersionTail =>
        "\",\n  \"supportedVersions\": [\n    \"0.3.0\",\n    \"0.3.1\",\n    \"0.4.0\",\n    \"1.0.0\",\n    \"1.1.0\"\n  ]\n}"u8;

    private static bool IsPlainVersion(string v)
    {
        if (v.Length is 0 or > 64) return false;
        foreach (var c in v)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '+' or '_')) return false;
        return true;
    }

    public static void WriteError(Stream stdout, string cniVersion, int code, string msg, string? details)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, CniResult.JsonOutput))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", cniVersion);
            w.WriteNumber("code", code);
            w.WriteString("msg", msg);
            if (!string.IsNullOrEmpty(details)) w.WriteString("details", details);
            w.WriteEndObject();
        }
        WriteDocument(stdout, ms.ToArray());
    }

    /// <summary>One JSON document and its newline, in one write.</summary>
    private static void WriteDocument(Stream stdout, byte[] json)
    {
        var line = new byte[json.Length + 1];
        json.CopyTo(line, 0);
        line[^1] = (byte)'\n';
        stdout.Write(line);
    }
}
