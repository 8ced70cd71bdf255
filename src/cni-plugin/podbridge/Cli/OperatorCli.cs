using System.Reflection;
using System.Text.Json;
using PodBridge.Cni;

namespace PodBridge.Plugin.Cli;

/// <summary>Where the operator commands look: the same places a runtime and the plugin use, overridable for tests.</summary>
internal sealed record CliOptions
{
    public string ConfDir { get; init; } = Cli.ConfDir.Default;
    public string BinDir { get; init; } = "/opt/cni/bin";
    public string? DataDir { get; init; }
    public string MetricsDir { get; init; } = CallMetrics.Dir;
    public string? Network { get; init; }
    public string? Out { get; init; }
    public bool Json { get; init; }
    public bool DryRun { get; init; }
    public List<string> Positional { get; } = [];
}

/// <summary>
/// <c>podbridge SUBCOMMAND</c>: the plugin explaining itself to people. Runtimes never pass argv; they set
/// CNI_COMMAND, and then the CNI path runs unchanged. Exit codes: 0 healthy / done, 1 findings or failure,
/// 2 usage error.
/// </summary>
internal static class OperatorCli
{
    public static bool IsCniInvocation(string[] args) =>
        args.Length == 0 || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(CniEnvironment.Command));

    private const string Usage = """
        usage: podbridge COMMAND [options]

        Runtimes run podbridge with CNI_COMMAND set (the CNI plugin). People run:
          validate [FILE|DIR]    check conflists as ADD would, plus node checks (default DIR /etc/cni/net.d)
          doctor                 check this node as the plugin needs it; every finding names its fix
          leases                 the IPAM leases of this node's podbridge networks (--network N, --json)
          gc [--dry-run]         release leases, veths and masquerade entries whose pod is provably gone
          explain CONTAINERID    lease, interfaces, addresses, routes and last log lines of one container
          metrics [--out FILE]   Prometheus text: pool usage, reclaimable leases, call counters and latency
          --version              version and git commit
          --help                 this text

        options:
          --conf-dir DIR     CNI config directory (default /etc/cni/net.d)
          --bin-dir DIR      CNI plugin directory, ':'-separated (default /opt/cni/bin)
          --data-dir DIR     IPAM data dir instead of each network's ipam.dataDir
          --metrics-dir DIR  where the plugin counts calls (default /run/podbridge, or $PODBRIDGE_METRICS_DIR)
          --network NAME     only this network (leases, gc, metrics)
          --json             machine-readable output (validate, leases, doctor)
        To inspect another network namespace as the node, run podbridge inside it: ip netns exec NS podbridge doctor
        exit status: 0 healthy / done, 1 findings or failure, 2 usage error
        """;

    public static int Run(string[] args)
    {
        var command = args[0];
        if (command is "--help" or "-h" or "help")
        {
            Console.Out.WriteLine(Usage);
            return 0;
        }
        if (command is "--version" or "version")
        {
            var v = Version.Split('+', 2);
            Console.Out.WriteLine(v.Length == 2 ? $"podbridge {v[0]} (commit {v[1]})" : $"podbridge {v[0]}");
            return 0;
        }
        if (command is not ("validate" or "doctor" or "leases" or "gc" or "explain" or "metrics"))
            return UsageError($"unknown command '{command}'");

        var options = new CliOptions();
        for (var i = 1; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            try
            {
                options = args[i] switch
                {
                    "--conf-dir" => options with { ConfDir = Value() },
                    "--bin-dir" => options with { BinDir = Value() },
                    "--data-dir" => options with { DataDir = Value() },
                    "--metrics-dir" => options with { MetricsDir = Value() },
                    "--network" => options with { Network = Value() },
                    "--out" => options with { Out = Value() },
                    "--json" => options with { Json = true },
                    "--dry-run" => options with { DryRun = true },
                    var a when a.StartsWith('-') => throw new ArgumentException($"unknown option '{a}'"),
                    var a => Positional(options, a),
                };
            }
            catch (ArgumentException e)
            {
                return UsageError(e.Message);
            }
        }

        try
        {
            return command switch
            {
                "validate" => Validate(options),
                "doctor" => new Doctor(options).Run(Console.Out),
                "leases" => NodeCommands.Leases(options, Console.Out),
                "gc" => NodeCommands.Gc(options, Console.Out),
                "explain" => options.Positional.Count == 1
                    ? NodeCommands.Explain(options, options.Positional[0], Console.Out)
                    : UsageError("explain needs one CONTAINERID (or a unique prefix of it)"),
                "metrics" => MetricsCommand.Run(options, Console.Out),
                _ => 2,
            };
        }
        catch (Exception e) when (e is CniException or IOException or UnauthorizedAccessException or Netlink.NetlinkException)
        {
            Console.Error.WriteLine($"podbridge {command}: {e.Message}");
            return 1;
        }
    }

    private static CliOptions Positional(CliOptions o, string a)
    {
        o.Positional.Add(a);
        return o;
    }

    private static int UsageError(string message)
    {
        Console.Error.WriteLine($"podbridge: {message}\n");
        Console.Error.WriteLine(Usage);
        return 2;
    }

    /// <summary>"1.0.0+&lt;commit&gt;" as stamped at build (InformationalVersion with SourceRevisionId).</summary>
    public static string Version =>
        typeof(OperatorCli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";

    private static int Validate(CliOptions options)
    {
        if (options.Positional.Count > 1) return UsageError("validate takes one FILE or DIR");
        var target = options.Positional.Count == 1 ? options.Positional[0] : options.ConfDir;
        if (!File.Exists(target) && !Directory.Exists(target))
        {
            Console.Error.WriteLine($"podbridge validate: {target} does not exist");
            return 1;
        }
        var validator = new Validator(options.BinDir, Validator.NodeAddresses);
        var files = validator.Run(target);
        if (options.Json)
        {
            using var w = new Utf8JsonWriter(Console.OpenStandardOutput(), new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
            w.WriteStartObject();
            w.WriteBoolean("valid", validator.Findings.Count == 0);
            w.WriteStartArray("files");
            foreach (var f in files) w.WriteStringValue(f);
            w.WriteEndArray();
            w.WriteStartArray("findings");
            foreach (var f in validator.Findings)
            {
                w.WriteStartObject();
                w.WriteString("file", f.File);
                w.WriteString("path", f.Path);
                w.WriteNumber("line", f.Line);
                w.WriteNumber("column", f.Column);
                w.WriteString("severity", f.Warning ? "warning" : "error");
                w.WriteString("message", f.Message);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
            w.Flush();
            Console.Out.WriteLine();
        }
        else
        {
            foreach (var f in validator.Findings) Console.Out.WriteLine(f);
            foreach (var f in files.Where(f => validator.Findings.All(x => x.File != f)))
                Console.Out.WriteLine($"{f}: ok");
        }
        return validator.Findings.Count == 0 ? 0 : 1;
    }
}
