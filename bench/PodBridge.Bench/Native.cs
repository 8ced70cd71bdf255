using System.Runtime.InteropServices;

namespace PodBridge.Bench;

/// <summary>
/// The few libc calls the bench needs. posix_spawn + wait4 rather than System.Diagnostics.Process:
/// Process adds its own pipe/reaper machinery to the timed path and cannot give us the child's rusage.
/// </summary>
internal static unsafe partial class Native
{
    private const string Libc = "libc";

    public const int O_CLOEXEC = 0x80000;
    public const int O_NONBLOCK = 0x800;
    public const int F_SETFL = 4;
    public const int F_GETFL = 3;
    public const int F_SETPIPE_SZ = 1031;
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    // glibc x86_64: posix_spawn_file_actions_t is 80 bytes, posix_spawnattr_t 336, sigset_t 128.
    // Over-allocate so a libc with larger opaque types still fits.
    public const int FileActionsSize = 256;
    public const int SpawnAttrSize = 1024;
    public const int SigSetSize = 256;

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeVal
    {
        public long Sec;
        public long Usec;
        public readonly double TotalMilliseconds => Sec * 1000.0 + Usec / 1000.0;
    }

    /// <summary>struct rusage (x86_64 / aarch64 LP64 layout).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct RUsage
    {
        public TimeVal UserTime;      // ru_utime
        public TimeVal SystemTime;    // ru_stime
        public long MaxRssKiB;        // ru_maxrss
        public long IxRss, IdRss, IsRss;
        public long MinorFaults;      // ru_minflt
        public long MajorFaults;      // ru_majflt
        public long NSwap, InBlock, OuBlock, MsgSnd, MsgRcv, NSignals;
        public long VoluntaryCtxSwitches;   // ru_nvcsw
        public long InvoluntaryCtxSwitches; // ru_nivcsw
    }

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int pipe2(int* fds, int flags);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int fcntl(int fd, int cmd, int arg);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint read(int fd, byte* buf, nint count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial nint write(int fd, byte* buf, nint count);

    [LibraryImport(Libc, SetLastError = true)]
    public static partial int wait4(int pid, int* status, int options, RUsage* rusage);

    [LibraryImport(Libc)]
    public static partial uint geteuid();

    // posix_spawn* return the error number directly instead of setting errno.
    [LibraryImport(Libc)]
    public static partial int posix_spawn(int* pid, byte* path, void* fileActions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Libc)]
    public static partial int posix_spawn_file_actions_init(void* fileActions);

    [LibraryImport(Libc)]
    public static partial int posix_spawn_file_actions_destroy(void* fileActions);

    [LibraryImport(Libc)]
    public static partial int posix_spawn_file_actions_adddup2(void* fileActions, int fd, int newFd);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_init(void* attr);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_destroy(void* attr);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setflags(void* attr, short flags);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setsigdefault(void* attr, void* sigset);

    [LibraryImport(Libc)]
    public static partial int posix_spawnattr_setsigmask(void* attr, void* sigset);

    [LibraryImport(Libc)]
    public static partial int sigfillset(void* sigset);

    [LibraryImport(Libc)]
    public static partial int sigemptyset(void* sigset);

    public static Exception Error(string call, int errno) =>
        new InvalidOperationException($"{call} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");

    public static void Check(int rc, string call)
    {
        if (rc < 0)
            throw Error(call, Marshal.GetLastPInvokeError());
    }
}
