using System.Text;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>The netfilter commands: found in /usr/sbin, /sbin or PATH, run with a bounded wait, C locale.</summary>
internal static class Netfilter
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly Dictionary<string, string> Environment = new() { ["LC_ALL"] = "C" };

    public readonly record struct Result(int ExitCode, string Output, string Error);

    public static string? Find(string name)
    {
        foreach (var dir in new[] { "/usr/sbin", "/sbin" }.Concat(
                     (System.Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)))
        {
            var c = Path.Combine(dir, name);
            if (File.Exists(c)) return c;
        }
        return null;
    }

    /// <param name="key">The config key that needs the command, named in the error.</param>
    public static string Require(string name, string package, string key = "ipMasq") => Find(name) ?? throw new CniException(CniErrorCode.IoFailure,
        $"{key}: the {name} command was not found in /usr/sbin, /sbin or PATH; install the {package} package");

    /// <summary>Runs the tool in this process's netns (the node's); a script goes to its stdin.</summary>
    public static Result Run(string path, string[] argv, string? script, string key = "ipMasq")
    {
        Log.Debug($"{Path.GetFileName(path)} {string.Join(' ', argv)}{(script is null ? "" : $" <<\n{script}")}");
        ChildProcess.Outcome outcome;
        try
        {
            // Callers recognise strerror texts ("No such file or directory"): keep them untranslated.
            outcome = ChildProcess.Run(path, argv, Environment, script is null ? null : Encoding.UTF8.GetBytes(script),
                Timeout, captureStderr: true);
        }
        catch (FileNotFoundException e)
        {
            throw new CniException(CniErrorCode.IoFailure, $"{key}: {e.Message}");
        }
        catch (TimeoutException e)
        {
            throw new CniException(CniErrorCode.TryAgainLater, $"{key}: {e.Message}");
        }
        var result = new Result(outcome.ExitCode, Encoding.UTF8.GetString(outcome.Stdout), outcome.Stderr.Trim().ReplaceLineEndings(" "));
        if (result.ExitCode != 0) Log.Debug($"{Path.GetFileName(path)} exited {result.ExitCode}: {result.Error}");
        return result;
    }
}
