using System.ComponentModel;
using System.Diagnostics;

namespace PodBridge.Cni;

/// <summary>
/// Runs a helper program to completion: bytes on its stdin, its stdout (and optionally stderr) captured, a bounded
/// wait. Shared by the delegated IPAM exec and the nft exec; both pipes drain while stdin is written, so a child
/// that writes before reading can never deadlock against us.
/// </summary>
public static class ChildProcess
{
    public readonly record struct Outcome(int ExitCode, byte[] Stdout, string Stderr);

    /// <param name="captureStderr">false: the child's stderr is ours (the runtime's log sees it as it is).</param>
    /// <exception cref="FileNotFoundException">the program cannot be started (missing, not executable).</exception>
    /// <exception cref="TimeoutException">it did not exit within <paramref name="timeout"/>; it has been killed.</exception>
    public static Outcome Run(string path, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment,
        byte[]? stdin, TimeSpan timeout, bool captureStderr)
    {
        var psi = new ProcessStartInfo(path)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = captureStderr,
            UseShellExecute = false,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) psi.Environment[k] = v;

        Process p;
        try
        {
            p = Process.Start(psi) ?? throw new FileNotFoundException($"could not start {path}", path);
        }
        catch (Win32Exception e)
        {
            throw new FileNotFoundException($"could not start {path}: {e.Message}", path, e);
        }
        using (p)
        {
            var stdout = new MemoryStream();
            var readOut = p.StandardOutput.BaseStream.CopyToAsync(stdout);
            var readErr = captureStderr ? p.StandardError.ReadToEndAsync() : null;
            try
            {
                if (stdin is { Length: > 0 }) p.StandardInput.BaseStream.Write(stdin);
                p.StandardInput.Close();
            }
            catch (IOException)
            {
                // The child exited without reading all of stdin; its exit code and output say why.
            }
            if (!p.WaitForExit(timeout))
            {
                try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
                throw new TimeoutException($"{path} did not finish within {timeout.TotalSeconds:F0} s and was killed");
            }
            readOut.GetAwaiter().GetResult();
            var stderr = readErr?.GetAwaiter().GetResult() ?? "";
            return new Outcome(p.ExitCode, stdout.ToArray(), stderr);
        }
    }

    /// <summary>64-bit FNV-1a: a stable, dependency-free hash for names derived from identifiers.</summary>
    public static ulong Fnv1a64(string s)
    {
        const ulong offset = 14695981039346656037UL, prime = 1099511628211UL;
        var h = offset;
        foreach (var c in s) { h ^= c; h *= prime; }
        return h;
    }
}
