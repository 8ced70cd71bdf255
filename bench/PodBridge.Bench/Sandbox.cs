using System.Diagnostics;
using System.Security.Cryptography;

namespace PodBridge.Bench;

/// <summary>
/// Everything the bench creates on the host — network namespaces, bridges, data dirs — named with
/// one random run id so that cleanup removes exactly that and nothing else, also after a failure
/// or Ctrl-C. Namespace setup uses `ip` (outside every timed window); the plugins are what we measure.
/// </summary>
internal sealed class Sandbox : IDisposable
{
    private readonly List<string> _namespaces = [];
    private readonly List<string> _bridges = [];
    private readonly object _gate = new();
    private bool _disposed;

    public Sandbox(string dataParent)
    {
        RunId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        DataRoot = Path.Combine(dataParent, $"pbb-{RunId}");
        Directory.CreateDirectory(DataRoot);
    }

    /// <summary>6 hex chars; every name the bench creates starts with "pbb" + this.</summary>
    public string RunId { get; }

    public string DataRoot { get; }

    /// <summary>Bridge names must fit IFNAMSIZ (15): "pbb" + tag + 6 hex.</summary>
    public string BridgeName(char tag)
    {
        var name = $"pbb{tag}{RunId}";
        lock (_gate) _bridges.Add(name);
        return name;
    }

    public string DataDir(string tag) => Path.Combine(DataRoot, tag);

    /// <summary>Creates <paramref name="count"/> namespaces in one `ip -batch` and returns their /run/netns paths.</summary>
    public IReadOnlyList<string> CreateNamespaces(string tag, int count)
    {
        var names = Enumerable.Range(0, count).Select(i => $"pbb{RunId}{tag}{i}").ToList();
        lock (_gate) _namespaces.AddRange(names);
        Tool.Run("ip", ["-batch", "-"], string.Concat(names.Select(n => $"netns add {n}\n")));
        return names.Select(n => $"/run/netns/{n}").ToList();
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
        }
        // Deleting a namespace destroys the pod end of each veth and with it the host end.
        if (_namespaces.Count > 0)
            Tool.TryRun("ip", ["-force", "-batch", "-"], string.Concat(_namespaces.Select(n => $"netns del {n}\n")));
        var existing = Tool.TryRun("ip", ["-o", "link", "show"]) ?? "";
        foreach (var bridge in _bridges.Distinct())
            if (existing.Contains($" {bridge}:", StringComparison.Ordinal) || existing.Contains($" {bridge}@", StringComparison.Ordinal))
                Tool.TryRun("ip", ["link", "del", bridge]);
        try
        {
            if (Directory.Exists(DataRoot))
                Directory.Delete(DataRoot, recursive: true);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"warning: could not remove {DataRoot}: {e.Message}");
        }
    }

    /// <summary>Names with this run's prefix still visible in `ip netns list` / `ip link` (should be none).</summary>
    public IReadOnlyList<string> Leftovers()
    {
        var prefix = $"pbb{RunId}";
        var left = new List<string>();
        var netns = Tool.TryRun("ip", ["netns", "list"]) ?? "";
        left.AddRange(netns.Split('\n').Select(l => l.Split(' ')[0]).Where(n => n.StartsWith(prefix, StringComparison.Ordinal)));
        var links = Tool.TryRun("ip", ["-o", "link", "show"]) ?? "";
        foreach (var line in links.Split('\n'))
        {
            var parts = line.Split(':', 3);
            if (parts.Length < 2) continue;
            var name = parts[1].Trim().Split('@')[0];
            if (_bridges.Contains(name)) left.Add(name);
        }
        if (Directory.Exists(DataRoot)) left.Add(DataRoot);
        return left;
    }
}

/// <summary>Runs helper tools (ip, dpkg-query) whose cost is never measured.</summary>
internal static class Tool
{
    public static string Run(string file, IReadOnlyList<string> args, string? stdin = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {file}");
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        var stderrTask = p.StandardError.ReadToEndAsync();
        var stdout = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        var stderr = stderrTask.Result;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {p.ExitCode}: {stderr.Trim()}");
        return stdout;
    }

    public static string? TryRun(string file, IReadOnlyList<string> args, string? stdin = null)
    {
        try
        {
            return Run(file, args, stdin);
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"warning: {e.Message}");
            return null;
        }
    }
}
