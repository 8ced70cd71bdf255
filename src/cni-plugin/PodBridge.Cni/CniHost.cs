using System.Text.Json;

namespace PodBridge.Cni;

/// <summary>
/// The protocol layer around a plugin: environment + stdin in, exactly one JSON document (or nothing) out.
/// The only catch-all of the process lives here: anything thrown becomes an error JSON on stdout, never a
/// stack trace. I/O is injectable so the protocol is unit-testable without root.
/// </summary>
public static class CniHost
{
    public sealed record Io(Func<string, string?> GetEnv, Func<byte[]> ReadStdin, Stream Stdout);

    public static Io ProcessIo() => new(Environment.GetEnvironmentVariable, ReadAllStdin, Console.OpenStandardOutput());

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
            errorVersion = NetConf.PeekVersion(request.StdinConfig) ?? errorVersion;
            Log.Begin(pluginName, request);

            if (request.Verb == CniVerb.Version)
            {
                WriteVersion(io.Stdout, errorVersion);
                return 0;
            }

            var config = NetConf.Parse(request.StdinConfig);
            errorVersion = config.Version;
            Log.Configure(config);
            RequireVersion(request.Verb, config.Version);

            switch (request.Verb)
            {
                case CniVerb.Add:
                    var result = plugin.Add(request, config);
                    Log.Result(result);
                    io.Stdout.Write(result.ToJson(config.Version));
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
                try { errorVersion = NetConf.PeekVersion(ReadStdinOnce()) ?? errorVersion; }
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

    public static void WriteVersion(Stream stdout, string cniVersion)
    {
        using var w = new Utf8JsonWriter(stdout, CniResult.JsonOutput);
        w.WriteStartObject();
        w.WriteString("cniVersion", cniVersion);
        w.WriteStartArray("supportedVersions");
        foreach (var v in CniVersion.Supported) w.WriteStringValue(v);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static void WriteError(Stream stdout, string cniVersion, int code, string msg, string? details)
    {
        using var w = new Utf8JsonWriter(stdout, CniResult.JsonOutput);
        w.WriteStartObject();
        w.WriteString("cniVersion", cniVersion);
        w.WriteNumber("code", code);
        w.WriteString("msg", msg);
        if (!string.IsNullOrEmpty(details)) w.WriteString("details", details);
        w.WriteEndObject();
    }

    private static byte[] ReadAllStdin()
    {
        using var stdin = Console.OpenStandardInput();
        using var ms = new MemoryStream();
        stdin.CopyTo(ms);
        return ms.ToArray();
    }
}
