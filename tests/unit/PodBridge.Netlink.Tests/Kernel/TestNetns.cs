using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace PodBridge.Netlink.Tests.Kernel;

/// <summary>
/// A network namespace of our own ("pbt" + 6 random hex digits, /run/netns/NAME), deleted in Dispose even when
/// the test failed. Links created in it die with it, so kernel tests never touch the host namespace.
/// </summary>
internal sealed class TestNetns : IDisposable
{
    public TestNetns()
    {
        Name = "pbt" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(3));
        Ip.Run("netns", "add", Name);
        try
        {
            Handle = NetNsHandle.Open(Path);
        }
        catch
        {
            Ip.TryRun("netns", "del", Name);
            throw;
        }
    }

    public string Name { get; }
    public string Path => $"/run/netns/{Name}";
    public NetNsHandle Handle { get; }

    /// <summary>`ip -j -n NAME args...` parsed.</summary>
    public JsonElement Json(params string[] args) => Ip.Json(["-n", Name, .. args]);

    public void Dispose()
    {
        Handle.Dispose();
        Ip.TryRun("netns", "del", Name);
    }
}

/// <summary>iproute2, used by tests only to set up fixtures and to inspect kernel state independently of our code.</summary>
internal static class Ip
{
    public static string Run(params string[] args)
    {
        var (code, stdout, stderr) = Exec("ip", args);
        if (code != 0) throw new InvalidOperationException($"ip {string.Join(' ', args)} exited {code}: {stderr.Trim()}");
        return stdout;
    }

    public static void TryRun(params string[] args) => Exec("ip", args);

    public static JsonElement Json(params string[] args)
    {
        using var document = JsonDocument.Parse(Run(["-j", .. args]));
        return document.RootElement.Clone();
    }

    public static (int Code, string Stdout, string Stderr) Exec(string file, IEnumerable<string> args, string? stdin = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        if (stdin is not null)
        {
            process.StandardInput.Write(stdin);
            process.StandardInput.Close();
        }
        var stderrTask = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderrTask.Result);
    }
}
