using System.Diagnostics;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// `podbridge-ipam serve --data-dir D` owned by a test, like <see cref="TestNetNs"/> owns a namespace: started and
/// waited for, SIGKILLed / stopped / continued on demand, and always killed in Dispose (also at test-host exit), so
/// no server outlives its test. <see cref="Served"/> counts the requests it answered (one stderr line each).
/// </summary>
public sealed class WarmServer : IDisposable
{
    private static readonly List<WarmServer> Live = [];

    static WarmServer() => AppDomain.CurrentDomain.ProcessExit += (_, _) =>
    {
        lock (Live) foreach (var s in Live.ToArray()) s.Dispose();
    };

    private readonly string _dataDir;
    private readonly List<string> _lines = [];
    private Process? _process;
    private int _served;

    private WarmServer(string dataDir) => _dataDir = dataDir;

    public string SocketPath => Path.Combine(_dataDir, "podbridge-ipam.sock");

    /// <summary>Requests answered (any status) over every incarnation of the server.</summary>
    public int Served => Volatile.Read(ref _served);

    public int Pid => _process?.Id ?? 0;

    public string Output { get { lock (_lines) return string.Join("\n", _lines); } }

    public static async Task<WarmServer> Start(string dataDir)
    {
        var s = new WarmServer(dataDir);
        lock (Live) Live.Add(s);
        try { await s.StartProcess(); }
        catch { s.Dispose(); throw; }
        return s;
    }

    /// <summary>A new server process on the same data dir (after <see cref="Kill"/>).</summary>
    public Task Restart() => StartProcess();

    private async Task StartProcess()
    {
        var psi = new ProcessStartInfo(Binaries.PodBridgeIpam, ["serve", "--data-dir", _dataDir])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var p = new Process { StartInfo = psi };
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (_lines) _lines.Add(e.Data);
            if (e.Data.StartsWith("podbridge-ipam serve: serving", StringComparison.Ordinal)) ready.TrySetResult();
            else if (e.Data.Contains(" ADD ") || e.Data.Contains(" DEL ") || e.Data.Contains(" CHECK ")) Interlocked.Increment(ref _served);
        };
        p.Start();
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        _process = p;
        var done = await Task.WhenAny(ready.Task, p.WaitForExitAsync(), Task.Delay(TimeSpan.FromSeconds(20)));
        if (done != ready.Task)
            throw new XunitException($"podbridge-ipam serve did not come up (exited: {p.HasExited}):\n{Output}");
    }

    /// <summary>SIGKILL, no warning: what the OOM killer or a node agent crash does.</summary>
    public void Kill()
    {
        var p = _process;
        if (p is null || p.HasExited) return;
        p.Kill();
        p.WaitForExit(10_000);
    }

    public async Task Signal(string signal) => (await Sh.Run("kill", $"-{signal}", Pid.ToString())).EnsureOk();

    public void Dispose()
    {
        var p = _process;
        if (p is not null && !p.HasExited)
        {
            try
            {
                Process.Start("kill", ["-CONT", p.Id.ToString()])?.WaitForExit(5_000);
                p.Kill();
                p.WaitForExit(10_000);
            }
            catch (InvalidOperationException) { }
        }
        p?.Dispose();
        lock (Live) Live.Remove(this);
    }
}
