namespace PodBridge.Node;

/// <summary>Puts the CNI binaries into the node's CNI bin dir, each one atomically and only when it differs.</summary>
public static class Installer
{
    /// <summary>Always ours: replaced whenever the shipped copy differs.</summary>
    public static readonly string[] Owned = ["podbridge", "podbridge-ipam"];

    /// <summary>Installed only when the node lacks them: a node's own (distribution) copy wins.</summary>
    public static readonly string[] IfMissing = ["portmap", "loopback"];

    private const UnixFileMode Executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>Throws <see cref="AgentException"/> when a binary is missing or the node's glibc is too old for it.</summary>
    public static void Install(string sourceDir, string binDir, string? nodeLibc, Action<string> log)
    {
        var nodeGlibc = nodeLibc is null ? Glibc.Running() : Glibc.Required(nodeLibc);
        var plan = new List<(string Name, string Source)>();
        foreach (var name in Owned)
        {
            var source = Path.Combine(sourceDir, name);
            if (!File.Exists(source)) throw new AgentException($"cannot install {name}: {source} does not exist (--source-dir)");
            plan.Add((name, source));
        }
        foreach (var name in IfMissing)
        {
            var source = Path.Combine(sourceDir, name);
            if (File.Exists(Path.Combine(binDir, name))) continue;
            if (!File.Exists(source))
            {
                log($"{name} is neither in {binDir} nor in {sourceDir}; pods that need it will fail");
                continue;
            }
            plan.Add((name, source));
        }

        // Check every binary before installing any: half an installation is worse than none.
        foreach (var (name, source) in plan)
        {
            var required = Glibc.IsStaticExecutable(source) ? null : Glibc.Required(source);
            if (required is null || nodeGlibc is null) continue;
            if (nodeGlibc < required)
                throw new AgentException(
                    $"refusing to install {name}: it needs glibc {required} (GLIBC_{required}) but the node has glibc {nodeGlibc}; " +
                    "use a node image with a newer glibc or binaries built against an older one");
        }

        foreach (var (name, source) in plan)
        {
            var target = Path.Combine(binDir, name);
            var content = File.ReadAllBytes(source);
            if (AtomicFile.WriteIfChanged(target, content, Executable)) log($"installed {target} ({content.Length} bytes)");
        }
    }
}

/// <summary>A failure the agent reports as one line and exits on; no stack trace.</summary>
public sealed class AgentException(string message) : Exception(message);
