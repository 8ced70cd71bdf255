using System.Runtime.InteropServices;
using System.Text;
using Tmds.Linux;

namespace PodBridge.Netlink.Interop;

/// <summary>libc calls Tmds.LibC 0.5.0 does not bind, plus small helpers around the ones it does.</summary>
internal static unsafe partial class Native
{
    private const string Libc = "libc.so.6";

    public const long NsfsMagic = 0x6e736673;      // NSFS_MAGIC (linux/magic.h)
    public const uint NsGetNsType = 0xb703;        // NS_GET_NSTYPE = _IO(NSIO 0xb7, 0x3), Linux >= 4.11

    [LibraryImport(Libc, EntryPoint = "fstatfs", SetLastError = true)]
    private static partial int FStatFs(int fd, StatFsBuffer* buffer);

    // ioctl is variadic in C; the x86_64 and arm64 Linux ABIs pass a trailing pointer-sized argument the
    // same way for variadic and fixed-argument calls, so a fixed three-argument import is sound there.
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, nint argument);

    // struct statfs is 120 bytes on 64-bit Linux; f_type (a long / __fsword_t) is its first field everywhere.
    [StructLayout(LayoutKind.Sequential)]
    private struct StatFsBuffer
    {
        public nint Type;                          // f_type
        private fixed long _rest[16];
    }

    /// <summary>fstatfs(2)'s f_type, or -1 with errno set.</summary>
    public static long FileSystemType(int fd)
    {
        StatFsBuffer buffer;
        return FStatFs(fd, &buffer) == 0 ? buffer.Type : -1;
    }

    /// <summary>open(2) with a NUL-terminated UTF-8 path built on the stack for ordinary path lengths.</summary>
    public static int Open(string path, int flags)
    {
        var max = Encoding.UTF8.GetMaxByteCount(path.Length) + 1;
        Span<byte> bytes = max <= 512 ? stackalloc byte[max] : new byte[max];
        var length = Encoding.UTF8.GetBytes(path, bytes);
        bytes[length] = 0;
        fixed (byte* p = bytes)
            return LibC.open(p, flags, 0);
    }
}

/// <summary>An owned file descriptor (netlink socket). Closing it is the only cleanup a socket needs.</summary>
internal sealed class SafeFd : SafeHandle
{
    public SafeFd(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    public int Fd => IsClosed ? throw new ObjectDisposedException(nameof(SafeFd)) : (int)handle;

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
