using System.Runtime.InteropServices;

namespace PodBridge.Cni;

/// <summary>
/// Appends to a file that many plugin processes write at once (the log, the call counters), and rotates it.
/// <para>
/// Protocol. A writer opens with O_APPEND, takes flock(LOCK_SH) on that descriptor, checks that the path still
/// names the inode it opened (else it lost a race with a rotation: reopen), and writes its whole buffer in one
/// write(2) — the kernel appends each such write atomically, so lines of concurrent processes never interleave.
/// A rotator converts to LOCK_EX on the same inode, which waits until no writer is between its check and its write,
/// re-checks (another process may have rotated first), and renames the file to "NAME.1". So a line is either in
/// the file a writer verified or it is retried: none is lost, except with the one old file a later rotation drops.
/// </para>
/// No fsync: a log or a counter is not worth a disk flush per pod; a crash may lose the last lines, never order.
/// </summary>
public static partial class SharedFile
{
    /// <summary>
    /// glibc by its soname: "libc" alone sends the runtime's library probing through ~50 failed opens (libc.so is a
    /// linker script, then liblibc.so in every search directory), ~0.3 ms of a plugin process that lives ~10 ms.
    /// </summary>
    internal const string LibC = "libc.so.6";

    private const int O_RDWR = 0x2, O_WRONLY = 0x1, O_CREAT = 0x40, O_APPEND = 0x400, O_CLOEXEC = 0x80000;
    private const int LOCK_SH = 1, LOCK_EX = 2, LOCK_NB = 4;
    private const int EINTR = 4, ENOENT = 2;

    /// <summary>
    /// Appends <paramref name="bytes"/>; when the file then exceeds <paramref name="maxSize"/> (&gt; 0), rotates it.
    /// Returns the file's size after the write (0 without rotation, where it is not looked at).
    /// </summary>
    public static long Append(string path, ReadOnlySpan<byte> bytes, long maxSize = 0)
    {
        if (maxSize <= 0)
        {
            // No rotation: nothing can replace the inode under us, so the lock is not needed.
            var plain = OpenAppend(path);
            try { WriteAll(plain, bytes, path); }
            finally { close(plain); }
            return 0;
        }

        for (var attempt = 0; ; attempt++)
        {
            var fd = OpenAppend(path);
            try
            {
                Lock(fd, LOCK_SH, path);
                if (!StillNamed(fd, path) && attempt < 16) continue; // rotated between our open and our lock
                WriteAll(fd, bytes, path);
                var size = Size(fd);
                if (size > maxSize) Rotate(fd, path, maxSize);
                return size;
            }
            finally
            {
                close(fd);
            }
        }
    }

    /// <summary>Runs <paramref name="action"/> on the file's content under LOCK_EX, then truncates it (the counters' fold).</summary>
    public static bool DrainExclusive(string path, Action<byte[]> action, bool wait)
    {
        int fd;
        while ((fd = open(path, O_RDWR | O_CLOEXEC, 0)) < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == ENOENT) { action([]); return true; }
            if (errno != EINTR) throw Error("open", path, errno);
        }
        try
        {
            if (!TryLock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB, path)) return false;
            // Read through our own descriptor: .NET's FileStream on the path would take its own flock and collide.
            // One buffer of the file's size (appenders hold LOCK_SH, so it cannot grow under LOCK_EX): no growing copies.
            byte[] content;
            using (var stream = new FileStream(new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: false), FileAccess.Read, bufferSize: 0))
            {
                content = new byte[stream.Length];
                stream.ReadExactly(content);
            }
            action(content);
            if (ftruncate(fd, 0) != 0) throw Error("ftruncate", path, Marshal.GetLastPInvokeError());
            return true;
        }
        finally
        {
            close(fd);
        }
    }

    /// <summary>Writes a whole file atomically: a temp file beside it, then rename (readers see old or new, never half).</summary>
    public static void WriteAtomically(string path, ReadOnlySpan<byte> bytes)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var f = new FileStream(temp, FileMode.Create, FileAccess.Write))
            f.Write(bytes);
        File.Move(temp, path, overwrite: true);
    }

    private static void Rotate(int fd, string path, long maxSize)
    {
        // flock converts SH to EX by dropping and re-taking: two writers rotating at once cannot deadlock, and the
        // second finds the path already moved on (re-check below).
        Lock(fd, LOCK_EX, path);
        if (!StillNamed(fd, path) || Size(fd) <= maxSize) return;
        if (rename(path, path + ".1") != 0) throw Error("rename", path, Marshal.GetLastPInvokeError());
    }

    private static int OpenAppend(string path)
    {
        while (true)
        {
            var fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0x1a4 /* 0644 */);
            if (fd >= 0) return fd;
            var errno = Marshal.GetLastPInvokeError();
            if (errno != EINTR) throw Error("open", path, errno);
        }
    }

    private static void Lock(int fd, int op, string path)
    {
        if (!TryLock(fd, op, path)) throw Error("flock", path, 11);
    }

    private static bool TryLock(int fd, int op, string path)
    {
        while (flock(fd, op) != 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            if (errno == 11 /* EWOULDBLOCK */ && (op & LOCK_NB) != 0) return false;
            if (errno != EINTR) throw Error("flock", path, errno);
        }
        return true;
    }

    private static unsafe void WriteAll(int fd, ReadOnlySpan<byte> bytes, string path)
    {
        fixed (byte* p = bytes)
        {
            var done = 0;
            while (done < bytes.Length)
            {
                var n = write(fd, p + done, (nuint)(bytes.Length - done));
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == EINTR) continue;
                    throw Error("write", path, errno);
                }
                done += (int)n;
            }
        }
    }

    // struct stat on linux-x64 (the only target): st_ino at offset 8, st_size at 48; 144 bytes in all.
    private const int StatSize = 144, InoOffset = 8, SizeOffset = 48;

    private static unsafe bool StillNamed(int fd, string path)
    {
        byte* a = stackalloc byte[StatSize], b = stackalloc byte[StatSize];
        if (fstat(fd, a) != 0) throw Error("fstat", path, Marshal.GetLastPInvokeError());
        if (stat(path, b) != 0) return false;
        return *(ulong*)(a + InoOffset) == *(ulong*)(b + InoOffset) && *(ulong*)a == *(ulong*)b;
    }

    private static unsafe long Size(int fd)
    {
        byte* a = stackalloc byte[StatSize];
        if (fstat(fd, a) != 0) return 0;
        return *(long*)(a + SizeOffset);
    }

    private static IOException Error(string call, string path, int errno) =>
        new($"{call} {path}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");

    [LibraryImport(LibC, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags, int mode);

    [LibraryImport(LibC, EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport(LibC, EntryPoint = "close")]
    private static partial int close(int fd);

    [LibraryImport(LibC, EntryPoint = "flock", SetLastError = true)]
    private static partial int flock(int fd, int operation);

    [LibraryImport(LibC, EntryPoint = "fstat", SetLastError = true)]
    private static unsafe partial int fstat(int fd, byte* buf);

    [LibraryImport(LibC, EntryPoint = "stat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int stat(string path, byte* buf);

    [LibraryImport(LibC, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int rename(string from, string to);

    [LibraryImport(LibC, EntryPoint = "ftruncate", SetLastError = true)]
    private static partial int ftruncate(int fd, long length);
}
