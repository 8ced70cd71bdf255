namespace PodBridge.Node;

/// <summary>The agent's command line. Every flag with an environment default reads it through the injected lookup.</summary>
public sealed record AgentOptions(
    string NodeName,
    string? Kubeconfig,
    string CniBinDir,
    string CniConfDir,
    string DataDir,
    string SourceDir,
    int HealthzPort,
    bool InstallBinaries,
    string? NodeLibc)
{
    public const string Usage = """
        usage: podbridge-node [flags]
          --node-name NAME      this node's Node object (default: $NODE_NAME)
          --kubeconfig PATH     kubeconfig file (default: $KUBECONFIG, else the in-cluster service account)
          --cni-bin-dir DIR     where the CNI plugins are installed (default /opt/cni/bin)
          --cni-conf-dir DIR    where the conflist is written (default /etc/cni/net.d)
          --data-dir DIR        the IPAM lease database directory written into the conflist (default /var/lib/cni/podbridge)
          --source-dir DIR      where the binaries to install are (default: the directory of this executable)
          --healthz-port PORT   127.0.0.1 port of GET /healthz, 0 to disable (default 9765)
          --node-libc PATH      the node's libc.so.6, to check its glibc when the agent runs in an image
                                (default: the glibc the agent itself runs on)
          --no-install          do not install binaries (the conflist, routes and masquerade still apply)
        """;

    /// <summary>Parses <paramref name="args"/>; throws <see cref="ArgumentException"/> with a message naming the flag.</summary>
    public static AgentOptions Parse(IReadOnlyList<string> args, Func<string, string?> getenv)
    {
        string? nodeName = getenv("NODE_NAME"), kubeconfig = getenv("KUBECONFIG");
        string binDir = "/opt/cni/bin", confDir = "/etc/cni/net.d", dataDir = "/var/lib/cni/podbridge";
        var sourceDir = Path.GetDirectoryName(Environment.ProcessPath) ?? AppContext.BaseDirectory;
        var port = 9765;
        var install = true;
        string? nodeLibc = null;
        for (var i = 0; i < args.Count; i++)
        {
            var flag = args[i];
            string? inline = null;
            if (flag.StartsWith("--", StringComparison.Ordinal) && flag.IndexOf('=') is > 2 and var eq)
            {
                inline = flag[(eq + 1)..];
                flag = flag[..eq];
            }
            string Value() => inline ?? (i + 1 < args.Count ? args[++i] : throw new ArgumentException($"{flag} needs a value"));
            switch (flag)
            {
                case "--node-name": nodeName = Value(); break;
                case "--kubeconfig": kubeconfig = Value(); break;
                case "--cni-bin-dir": binDir = Value(); break;
                case "--cni-conf-dir": confDir = Value(); break;
                case "--data-dir": dataDir = Value(); break;
                case "--source-dir": sourceDir = Value(); break;
                case "--healthz-port":
                    var text = Value();
                    if (!int.TryParse(text, out port) || port is < 0 or > 65535)
                        throw new ArgumentException($"--healthz-port: '{text}' is not a port number (0-65535)");
                    break;
                case "--no-install": install = false; break;
                case "--node-libc": nodeLibc = Value(); break;
                default: throw new ArgumentException($"unknown flag '{args[i]}'");
            }
        }
        if (string.IsNullOrEmpty(nodeName)) throw new ArgumentException("--node-name: not given and NODE_NAME is not set");
        foreach (var (name, dir) in new[] { ("--cni-bin-dir", binDir), ("--cni-conf-dir", confDir), ("--data-dir", dataDir), ("--source-dir", sourceDir) })
            if (!Path.IsPathRooted(dir)) throw new ArgumentException($"{name}: '{dir}' must be an absolute path");
        return new AgentOptions(nodeName, string.IsNullOrEmpty(kubeconfig) ? null : kubeconfig, binDir, confDir, dataDir,
            sourceDir, port, install, nodeLibc);
    }
}
