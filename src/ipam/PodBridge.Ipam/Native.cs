using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace PodBridge.Ipam;

/// <summary>The few syscalls the IPAM needs; errno becomes an <see cref="IOException"/> here and nowhere else.</summary>
internal static unsafe partial class Native
{
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int LOCK_UN = 8;

    // Tmds.LibC has no flock(2).
    [LibraryImport("libc.so.6", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockRaw(int fd, int operation);

    public static int Errno => Marshal.GetLastPInvokeError();

    public static string Describe(int errno) => Marshal.GetPInvokeErrorMessage(errno);

    public static IOException Error(string what, int errno) => new($"{what}: {Describe(errno)} (errno {errno})") { HResult = errno };

    /// <summary>open(2) with O_CLOEXEC. No .NET FileStream: it would add its own flock(LOCK_SH) emulation of FileShare.</summary>
    public static SafeFileHandle Open(string path, int flags, int mode = 0x180 /* 0600 */)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        int fd;
        fixed (byte* p = bytes)
        {
            do fd = open(p, flags | O_CLOEXEC, (mode_t)(ushort)mode);
            while (fd < 0 && Errno == EINTR);
        }
        if (fd < 0) throw Error($"open {path}", Errno);
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>flock(2); false when LOCK_NB was given and someone else holds the lock.</summary>
    public static bool Flock(SafeFileHandle h, int operation, string path)
    {
        int rc;
        do rc = FlockRaw((int)h.DangerousGetHandle(), operation);
        while (rc < 0 && Errno == EINTR);
        if (rc == 0) return true;
        var errno = Errno;
        if (errno == EWOULDBLOCK) return false;
        throw Error($"flock {path}", errno);
    }

    public static void Fdatasync(SafeFileHandle h, string path)
    {
        if (fdatasync((int)h.DangerousGetHandle()) < 0) throw Error($"fdatasync {path}", Errno);
    }

    public static void Fsync(SafeFileHandle h, string path)
    {
        if (fsync((int)h.DangerousGetHandle()) < 0) throw Error($"fsync {path}", Errno);
    }

    public static void Ftruncate(SafeFileHandle h, long length, string path)
    {
        if (ftruncate((int)h.DangerousGetHandle(), length) < 0) throw Error($"ftruncate {path}", Errno);
    }

    /// <summary>fsync of a directory, so a newly created file's directory entry survives a crash.</summary>
    public static void FsyncDirectory(string dir)
    {
        using var h = Open(dir, O_RDONLY | O_DIRECTORY);
        Fsync(h, dir);
    }

    /// <summary>
    /// (st_dev, st_ino) of a path, following symlinks (/proc/PID/ns/net is one). Null when the path does not
    /// exist; other failures (EACCES, ...) throw, because "cannot tell" must never count as "gone".
    /// </summary>
    public static NetNsId? Identify(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        statx buf;
        int rc;
        fixed (byte* p = bytes)
            rc = statx(AT_FDCWD, p, 0, STATX_INO, &buf);
        if (rc < 0)
        {
            var errno = Errno;
            if (errno == ENOENT || errno == ENOTDIR) return null;
            throw Error($"stat {path}", errno);
        }
        return new NetNsId(MakeDev(buf.stx_dev_major, buf.stx_dev_minor), buf.stx_ino);
    }

    /// <summary>
    /// What changes whenever anyone writes a file, for the warm server's "did someone else touch the database"
    /// check: inode, size, mtime and ctime (ns). Default when the path does not exist.
    /// </summary>
    public static (ulong Ino, long Size, long MtimeNs, long CtimeNs) Stamp(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path + "\0");
        statx buf;
        int rc;
        fixed (byte* p = bytes)
            rc = statx(AT_FDCWD, p, 0, STATX_INO | STATX_SIZE | STATX_MTIME | STATX_CTIME, &buf);
        if (rc < 0) return default;
        return (buf.stx_ino, (long)buf.stx_size,
            buf.stx_mtime.tv_sec * 1_000_000_000L + buf.stx_mtime.tv_nsec,
            buf.stx_ctime.tv_sec * 1_000_000_000L + buf.stx_ctime.tv_nsec);
    }

    /// <summary>pread/pwrite of 8 bytes at offset 0 (the lock file's generation counter).</summary>
    public static long ReadLong(SafeFileHandle h)
    {
        Span<byte> b = stackalloc byte[8];
        return RandomAccess.Read(h, b, 0) == 8 ? BitConverter.ToInt64(b) : 0;
    }

    public static void WriteLong(SafeFileHandle h, long value)
    {
        Span<byte> b = stackalloc byte[8];
        BitConverter.TryWriteBytes(b, value);
        RandomAccess.Write(h, b, 0);
    }

    /// <summary>glibc's makedev encoding, so the stored st_dev equals what stat(1) prints.</summary>
    public static ulong MakeDev(uint major, uint minor) =>
        ((ulong)(major & 0xfffff000) << 32) | ((ulong)(major & 0xfff) << 8) |
        ((ulong)(minor & 0xffffff00) << 12) | (minor & 0xff);
}
