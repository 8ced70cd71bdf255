using System.Runtime.InteropServices;
using System.Text;

namespace PodBridge.Bench;

/// <summary>What one plugin process cost: whole-process wall time and its rusage.</summary>
internal sealed record Invocation(
    int ExitCode,
    double WallMs,
    long MaxRssKiB,
    double CpuMs,
    string Stdout,
    string Stderr)
{
    public bool Succeeded => ExitCode == 0;
}

/// <summary>
/// Runs a process the way a container runtime runs a CNI plugin (env + stdin in, stdout out).
/// The plugin is started through pbb-spawn (native/pbb-spawn.c), which times exactly spawn..exit
/// and returns the plugin's own rusage; exec from the bench itself would fold the bench's RSS into
/// the plugin's ru_maxrss. Everything that is not the plugin's own work happens outside the timed
/// window: argv/envp are marshalled and stdin already sits in the pipe before the spawn; output is
/// drained after exit.
/// </summary>
internal static unsafe class Spawner
{
    // Big enough that no plugin can block on a full pipe while nobody reads it (we read only after exit).
    private const int PipeCapacity = 1 << 20;

    public static string Launcher { get; } = Path.Combine(AppContext.BaseDirectory, "pbb-spawn");

    public static Invocation Run(string path, IReadOnlyList<string> argv, IReadOnlyList<string> env, byte[] stdin)
    {
        var natives = new List<nint>();
        int* stdinPipe = stackalloc int[2] { -1, -1 };
        int* stdoutPipe = stackalloc int[2] { -1, -1 };
        int* stderrPipe = stackalloc int[2] { -1, -1 };
        int* reportPipe = stackalloc int[2] { -1, -1 };
        void* actions = NativeMemory.AllocZeroed(Native.FileActionsSize);
        void* attr = NativeMemory.AllocZeroed(Native.SpawnAttrSize);
        void* sigDefault = NativeMemory.AllocZeroed(Native.SigSetSize);
        void* sigMask = NativeMemory.AllocZeroed(Native.SigSetSize);
        bool actionsInit = false, attrInit = false;
        try
        {
            byte* cPath = CString(Launcher, natives);
            byte** cArgv = CStringArray([Launcher, path, .. argv.Skip(1)], natives);
            byte** cEnv = CStringArray(env, natives);

            // O_CLOEXEC: concurrent spawns from other bench threads must not inherit these ends.
            Native.Check(Native.pipe2(stdinPipe, Native.O_CLOEXEC), "pipe2");
            Native.Check(Native.pipe2(stdoutPipe, Native.O_CLOEXEC), "pipe2");
            Native.Check(Native.pipe2(stderrPipe, Native.O_CLOEXEC), "pipe2");
            Native.Check(Native.pipe2(reportPipe, Native.O_CLOEXEC), "pipe2");
            if (stdin.Length > 65536)
                Native.fcntl(stdinPipe[1], Native.F_SETPIPE_SZ, stdin.Length);
            Native.fcntl(stdoutPipe[1], Native.F_SETPIPE_SZ, PipeCapacity);
            Native.fcntl(stderrPipe[1], Native.F_SETPIPE_SZ, PipeCapacity);
            WriteAll(stdinPipe[1], stdin);
            CloseFd(ref stdinPipe[1]);

            SpawnCheck(Native.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            actionsInit = true;
            SpawnCheck(Native.posix_spawn_file_actions_adddup2(actions, stdinPipe[0], 0), "adddup2");
            SpawnCheck(Native.posix_spawn_file_actions_adddup2(actions, stdoutPipe[1], 1), "adddup2");
            SpawnCheck(Native.posix_spawn_file_actions_adddup2(actions, stderrPipe[1], 2), "adddup2");
            SpawnCheck(Native.posix_spawn_file_actions_adddup2(actions, reportPipe[1], 3), "adddup2");

            // The .NET runtime ignores SIGPIPE and installs handlers; a runtime such as containerd
            // starts plugins with default dispositions and an empty mask, so do the same.
            SpawnCheck(Native.posix_spawnattr_init(attr), "posix_spawnattr_init");
            attrInit = true;
            Native.sigfillset(sigDefault);
            Native.sigemptyset(sigMask);
            SpawnCheck(Native.posix_spawnattr_setsigdefault(attr, sigDefault), "setsigdefault");
            SpawnCheck(Native.posix_spawnattr_setsigmask(attr, sigMask), "setsigmask");
            SpawnCheck(Native.posix_spawnattr_setflags(attr,
                (short)(Native.POSIX_SPAWN_SETSIGDEF | Native.POSIX_SPAWN_SETSIGMASK)), "setflags");

            int pid;
            int status;
            Native.RUsage usage;
            int rc = Native.posix_spawn(&pid, cPath, actions, attr, cArgv, cEnv);
            if (rc != 0)
                throw Native.Error($"posix_spawn {Launcher}", rc);
            while (Native.wait4(pid, &status, 0, &usage) < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Native.EINTR)
                    throw Native.Error("wait4", errno);
            }

            CloseFd(ref stdinPipe[0]);
            CloseFd(ref stdoutPipe[1]);
            CloseFd(ref stderrPipe[1]);
            CloseFd(ref reportPipe[1]);
            string stdout = Drain(stdoutPipe[0]);
            string stderr = Drain(stderrPipe[0]);
            string report = Drain(reportPipe[0]);
            if (ExitCode(status) != 0 || ParseReport(report) is not { } r)
                throw new InvalidOperationException(
                    $"pbb-spawn could not run {path} (exit {ExitCode(status)}): {stderr.Trim()}");

            // ru_maxrss is RUSAGE_BOTH for the reaped child: for the reference bridge it covers the
            // host-local child it waited for too (the larger of the two).
            return new Invocation(ExitCode(r.Status), r.WallNs / 1e6, r.MaxRssKiB, (r.UserUs + r.SysUs) / 1e3, stdout, stderr);
        }
        finally
        {
            if (actionsInit) Native.posix_spawn_file_actions_destroy(actions);
            if (attrInit) Native.posix_spawnattr_destroy(attr);
            NativeMemory.Free(actions);
            NativeMemory.Free(attr);
            NativeMemory.Free(sigDefault);
            NativeMemory.Free(sigMask);
            for (int i = 0; i < 2; i++)
            {
                CloseFd(ref stdinPipe[i]);
                CloseFd(ref stdoutPipe[i]);
                CloseFd(ref stderrPipe[i]);
                CloseFd(ref reportPipe[i]);
            }
            foreach (var p in natives)
                NativeMemory.Free((void*)p);
        }
    }

    private readonly record struct LauncherReport(long WallNs, int Status, long MaxRssKiB, long UserUs, long SysUs);

    private static LauncherReport? ParseReport(string line)
    {
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (f.Length != 5) return null;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        return new LauncherReport(long.Parse(f[0], inv), int.Parse(f[1], inv), long.Parse(f[2], inv), long.Parse(f[3], inv), long.Parse(f[4], inv));
    }

    private static int ExitCode(int status) =>
        (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f);

    private static void SpawnCheck(int rc, string call)
    {
        if (rc != 0)
            throw Native.Error(call, rc);
    }

    private static void CloseFd(ref int fd)
    {
        if (fd >= 0)
        {
            Native.close(fd);
            fd = -1;
        }
    }

    private static void WriteAll(int fd, byte[] data)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Native.write(fd, p + done, data.Length - done);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == Native.EINTR) continue;
                    throw Native.Error("write(stdin pipe)", errno);
                }
                done += (int)n;
            }
        }
    }

    // Non-blocking: a daemonised grandchild holding the pipe open must not hang the bench.
    private static string Drain(int fd)
    {
        Native.fcntl(fd, Native.F_SETFL, Native.fcntl(fd, Native.F_GETFL, 0) | Native.O_NONBLOCK);
        var buffer = new byte[16384];
        using var ms = new MemoryStream();
        fixed (byte* p = buffer)
        {
            while (true)
            {
                nint n = Native.read(fd, p, buffer.Length);
                if (n > 0) { ms.Write(buffer, 0, (int)n); continue; }
                if (n == 0) break;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Native.EINTR) continue;
                break;
            }
        }
        return Encoding.UTF8.GetString(ms.GetBuffer(), 0, (int)ms.Length);
    }

    private static byte* CString(string s, List<nint> natives)
    {
        int len = Encoding.UTF8.GetByteCount(s);
        byte* p = (byte*)NativeMemory.Alloc((nuint)len + 1);
        natives.Add((nint)p);
        Encoding.UTF8.GetBytes(s, new Span<byte>(p, len));
        p[len] = 0;
        return p;
    }

    private static byte** CStringArray(IReadOnlyList<string> items, List<nint> natives)
    {
        byte** array = (byte**)NativeMemory.AllocZeroed((nuint)(items.Count + 1), (nuint)sizeof(nint));
        natives.Add((nint)array);
        for (int i = 0; i < items.Count; i++)
            array[i] = CString(items[i], natives);
        return array;
    }
}
