namespace PodBridge.Cni;

/// <summary>
/// CNI_ARGS ("K=V;K2=V2"). Keys podbridge understands: IgnoreUnknown, IP, MAC and the K8S_POD_* keys
/// containerd and CRI-O send. Any other key is an error unless IgnoreUnknown=1|true is present.
/// </summary>
public sealed record CniArgs(IReadOnlyDictionary<string, string> Values)
{
    public static readonly CniArgs Empty = new(new Dictionary<string, string>());

    private static readonly HashSet<string> Known = new(StringComparer.Ordinal)
    {
        "IgnoreUnknown", "IP", "MAC",
        "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID",
    };

    public string? Get(string key) => Values.TryGetValue(key, out var v) ? v : null;

    public string? PodNamespace => Get("K8S_POD_NAMESPACE");
    public string? PodName => Get("K8S_POD_NAME");
    /// <summary>IP= may hold several comma-separated addresses (one per range set).</summary>
    public string? Ip => Get("IP");
    public string? Mac => Get("MAC");

    public static CniArgs Parse(string raw)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrWhiteSpace(raw)) return new CniArgs(values);
        foreach (var pair in raw.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=');
            if (eq <= 0)
                throw new CniException(CniErrorCode.InvalidEnvironmentVariables,
                    $"CNI_ARGS: '{pair}' is not a KEY=VALUE pair");
            values[pair[..eq].Trim()] = pair[(eq + 1)..].Trim();
        }

        var ignoreUnknown = values.TryGetValue("IgnoreUnknown", out var ig)
            && (ig == "1" || ig.Equals("true", StringComparison.OrdinalIgnoreCase));
        if (!ignoreUnknown)
            foreach (var key in values.Keys)
                if (!Known.Contains(key))
                    throw new CniException(CniErrorCode.InvalidEnvironmentVariables,
                        $"CNI_ARGS: unknown key '{key}' (add IgnoreUnknown=1 to pass keys podbridge does not use)");
        return new CniArgs(values);
    }
}
