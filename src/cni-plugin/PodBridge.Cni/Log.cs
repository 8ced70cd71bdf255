using System.Diagnostics;
using System.Text;

namespace PodBridge.Cni;

public enum LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3, Off = 4 }

/// <summary>
/// The plugin's log: one line per event, "time pid plugin VERB container/ifname level message".
/// Lines are buffered and written once at exit (one append to the log file, one write to stderr) so logging
/// costs no syscalls on the hot path. stdout is never used: it carries only the result or error JSON.
/// Level and file come from the config (logLevel, logFile) or PODBRIDGE_LOG_LEVEL / PODBRIDGE_LOG_FILE.
/// Debug adds per-step timings (<see cref="Time"/>).
/// </summary>
public static partial class Log
{
    // ADD runs its IPAM call on a second thread (BridgePlugin.Add): lines and step timings come from both.
    private static readonly Lock Sync = new();
    private static readonly StringBuilder FileBuffer = new();
    private static readonly StringBuilder StderrBuffer = new();
    private static readonly long Started = Stopwatch.GetTimestamp();
    private static string _prefix = "podbridge";
    private static string? _file = Environment.GetEnvironmentVariable("PODBRIDGE_LOG_FILE");
    private static LogLevel _fileLevel = ParseLevel(Environment.GetEnvironmentVariable("PODBRIDGE_LOG_LEVEL")) ?? LogLevel.Info;
    private static readonly LogLevel StderrLevel = LogLevel.Warn;

    public static bool DebugEnabled => _file is not null && _fileLevel == LogLevel.Debug;

    public static void Begin(string plugin, CniRequest request)
    {
        var who = request.ContainerId.Length > 0
            ? $"{(request.ContainerId.Length > 12 ? request.ContainerId[..12] : request.ContainerId)}/{request.IfName}"
            : "-";
        _prefix = $"{Environment.ProcessId} {plugin} {request.Verb.Name()} {who}";
        Context = new CallContext(plugin, request.Verb.Name(), request.ContainerId, request.IfName,
            request.Args.PodNamespace, request.Args.PodName);
    }

    public static void Configure(NetConf config)
    {
        if (Environment.GetEnvironmentVariable("PODBRIDGE_LOG_FILE") is null && !string.IsNullOrEmpty(config.LogFile))
            _file = config.LogFile;
        if (Environment.GetEnvironmentVariable("PODBRIDGE_LOG_LEVEL") is null && ParseLevel(config.LogLevel) is { } level)
            _fileLevel = level;
        ConfigureFormat(config);
    }

    public static LogLevel? ParseLevel(string? s) => s?.ToLowerInvariant() switch
    {
        "debug" => LogLevel.Debug,
        "info" => LogLevel.Info,
        "warn" or "warning" => LogLevel.Warn,
        "error" => LogLevel.Error,
        "off" or "none" => LogLevel.Off,
        _ => null,
    };

    public static void Debug(string msg) { if (DebugEnabled) Write(LogLevel.Debug, msg); }
    public static void Info(string msg) => Write(LogLevel.Info, msg);
    public static void Warn(string msg) => Write(LogLevel.Warn, msg);
    public static void Error(string msg) => Write(LogLevel.Error, msg);

    /// <summary>Times a step at debug level: <c>using (Log.Time("netlink.veth")) { ... }</c>.</summary>
    public static StepTimer Time(string step) => new(step, DebugEnabled || StepsWanted ? Stopwatch.GetTimestamp() : 0);

    public readonly struct StepTimer(string step, long start) : IDisposable
    {
        public void Dispose()
        {
            if (start == 0) return;
            var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            AddStep(step, ms);
            if (DebugEnabled) Write(LogLevel.Debug, $"step {step} {ms:F3}ms");
        }
    }

    private static void AddStep(string step, double ms)
    {
        lock (Sync)
        {
            var i = Steps.FindIndex(s => s.Step == step);
            if (i < 0) Steps.Add((step, ms));
            else Steps[i] = (step, Steps[i].Ms + ms);
        }
    }

    public static void End(int code, string? error)
    {
        var ms = Stopwatch.GetElapsedTime(Started).TotalMilliseconds;
        if (DebugEnabled)
            Write(LogLevel.Debug, $"managed allocations {GC.GetTotalAllocatedBytes() / 1024} KiB, GCs {GC.CollectionCount(0)}");
        _endCode = code;
        _endError = error;
        _endMs = ms;
        if (code == 0) Write(LogLevel.Info, $"ok in {ms:F1}ms");
        else Write(LogLevel.Error, $"failed with code {code} in {ms:F1}ms: {error}");
        _endMs = null;
        if (Context is { } c && c.Verb != "VERSION")
            CallMetrics.Record(c.Plugin, _network, c.Verb, code, Stopwatch.GetElapsedTime(Started));
    }

    private static void Write(LogLevel level, string msg)
    {
        var now = DateTime.UtcNow;
        var line = $"{now:yyyy-MM-ddTHH:mm:ss.fffZ} {_prefix} {LevelName(level)} {msg}\n";
        lock (Sync)
        {
            if (_file is not null && level >= _fileLevel) FileBuffer.Append(_json ? JsonLine(now, level, msg) : line);
            if (level >= StderrLevel) StderrBuffer.Append(line);
        }
    }

    internal static string LevelName(LogLevel l) => l switch
    {
        LogLevel.Debug => "debug",
        LogLevel.Info => "info",
        LogLevel.Warn => "warn",
        _ => "error",
    };

    public static void Flush()
    {
        if (StderrBuffer.Length > 0)
        {
            try { Console.Error.Write(StderrBuffer.ToString()); } catch (IOException) { }
            StderrBuffer.Clear();
        }
        if (FileBuffer.Length > 0 && _file is not null)
        {
            try
            {
                var bytes = Encoding.UTF8.GetBytes(FileBuffer.ToString());
                try { AppendLog(bytes); }
                catch (IOException) when (Path.GetDirectoryName(_file) is { Length: > 0 } dir && !Directory.Exists(dir))
                {
                    // Created only when missing: a mkdir per call is not free in a process that lives for milliseconds.
                    Directory.CreateDirectory(dir);
                    AppendLog(bytes);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                try { Console.Error.Write($"podbridge: cannot write log file {_file}: {e.Message}\n"); } catch (IOException) { }
            }
            FileBuffer.Clear();
        }
    }

    private static void AppendLog(byte[] bytes)
    {
        if (_maxSize > 0) SharedFile.Append(_file!, bytes, _maxSize);
        else AppendAtomically(_file!, bytes);
    }

    /// <summary>
    /// One write(2) on an O_APPEND descriptor: the kernel places it at the end of the file atomically, so the
    /// lines of concurrent plugin processes never overwrite each other (.NET's FileMode.Append writes with
    /// pwrite at the length it saw when opening, which races).
    /// </summary>
    private static void AppendAtomically(string path, byte[] bytes)
    {
        const int O_WRONLY = 0x1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
        var fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0x1a4 /* 0644 */);
        if (fd < 0)
            throw new IOException($"open: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
        try
        {
            unsafe
            {
                fixed (byte* p = bytes)
                {
                    var done = 0;
                    while (done < bytes.Length)
                    {
                        var n = write(fd, p + done, (nuint)(bytes.Length - done));
                        if (n < 0)
                        {
                            var errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                            if (errno == 4) continue; // EINTR
                            throw new IOException($"write: errno {errno}");
                        }
                        done += (int)n;
                    }
                }
            }
        }
        finally
        {
            close(fd);
        }
    }

    [System.Runtime.InteropServices.LibraryImport(SharedFile.LibC, EntryPoint = "open", SetLastError = true,
        StringMarshalling = System.Runtime.InteropServices.StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [System.Runtime.InteropServices.LibraryImport(SharedFile.LibC, EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buffer, nuint count);

    [System.Runtime.InteropServices.LibraryImport(SharedFile.LibC, EntryPoint = "close")]
    private static partial int close(int fd);
}
