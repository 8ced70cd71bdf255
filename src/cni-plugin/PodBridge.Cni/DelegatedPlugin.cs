using System.Text.Json;

namespace PodBridge.Cni;

/// <summary>
/// Runs another plugin binary (an IPAM named by ipam.type) from CNI_PATH the way a runtime would:
/// same CNI_* environment, the same config on stdin, its stdout parsed as a result or an error.
/// </summary>
public sealed class DelegatedPlugin(string type) : ICniPlugin
{
    public CniResult Add(CniRequest request, NetConf config)
    {
        var stdout = Exec(request, "ADD", config);
        try
        {
            using var doc = JsonDocument.Parse(stdout);
            return CniResult.Parse(doc.RootElement, $"result of IPAM plugin '{type}'");
        }
        catch (JsonException e)
        {
            throw new CniException(CniErrorCode.DelegateFailed, $"IPAM plugin '{type}' printed invalid JSON: {e.Message}");
        }
    }

    public void Del(CniRequest request, NetConf config) => Exec(request, "DEL", config);
    public void Check(CniRequest request, NetConf config) => Exec(request, "CHECK", config);
    public void Gc(CniRequest request, NetConf config) => Exec(request, "GC", config);
    public void Status(CniRequest request, NetConf config) => Exec(request, "STATUS", config);

    private string Find(CniRequest request)
    {
        if (type.Contains('/') || type is "." or "..")
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"ipam.type '{type}' must be a plugin name, not a path");
        // CNI_PATH is optional for podbridge's embedded IPAM, so the env table does not require it; a delegated IPAM does.
        if (request.Path.Count == 0)
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables,
                $"{CniEnvironment.PathVar} is required to run IPAM plugin '{type}' but is not set");
        foreach (var dir in request.Path)
        {
            var candidate = System.IO.Path.Combine(dir, type);
            if (File.Exists(candidate)) return candidate;
        }
        throw new CniException(CniErrorCode.DelegateFailed,
            $"IPAM plugin '{type}' not found in CNI_PATH ({string.Join(":", request.Path)})");
    }

    /// <summary>A hung IPAM must not hang the pod start forever: the runtime can retry a code-11 failure.</summary>
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private byte[] Exec(CniRequest request, string verb, NetConf config)
    {
        var binary = Find(request);
        var environment = new Dictionary<string, string>(request.Environment) { [CniEnvironment.Command] = verb };
        ChildProcess.Outcome outcome;
        using (Log.Time($"delegate.{type}.{verb}"))
        {
            try
            {
                outcome = ChildProcess.Run(binary, [], environment, request.StdinConfig, Timeout, captureStderr: false);
            }
            catch (FileNotFoundException e)
            {
                throw new CniException(CniErrorCode.DelegateFailed, $"IPAM plugin '{type}': {e.Message}");
            }
            catch (TimeoutException e)
            {
                throw new CniException(CniErrorCode.TryAgainLater, $"IPAM plugin '{type}' {verb}: {e.Message}");
            }
        }
        if (outcome.ExitCode != 0)
        {
            var (code, msg) = ParseError(outcome.Stdout);
            throw new CniException(code, $"IPAM plugin '{type}' {verb} failed: {msg}");
        }
        return outcome.Stdout;
    }

    private static (CniErrorCode, string) ParseError(byte[] output)
    {
        try
        {
            using var doc = JsonDocument.Parse(output);
            var root = doc.RootElement;
            var code = root.TryGetProperty("code", out var c) && c.TryGetInt32(out var ci) ? (CniErrorCode)ci : CniErrorCode.DelegateFailed;
            var msg = root.TryGetProperty("msg", out var m) ? m.GetString() ?? "" : "";
            if (root.TryGetProperty("details", out var d) && d.GetString() is { Length: > 0 } det) msg += $" ({det})";
            return (code, msg);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            return (CniErrorCode.DelegateFailed, System.Text.Encoding.UTF8.GetString(output).Trim());
        }
    }
}
