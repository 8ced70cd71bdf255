using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using PodBridge.Netlink.Interop;
using Tmds.Linux;
using static Tmds.Linux.LibC;

namespace PodBridge.Netlink;

/// <summary>
/// An open network namespace (a file on nsfs: /proc/PID/ns/net, /run/netns/NAME, a CNI_NETNS bind mount).
/// Holding the fd keeps the namespace alive even if its bind mount is removed meanwhile.
/// </summary>
public sealed class NetNsHandle : SafeHandle
{
    private const int CloneNewNet = 0x40000000;  // CLONE_NEWNET
    private const int WorkerStackSize = 256 * 1024;

    private (ulong Dev, ulong Ino)? _identity;

    private NetNsHandle(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    protected override bool ReleaseHandle() => close((int)handle) == 0;

    /// <summary>
    /// Opens <paramref name="path"/> and checks it is a network namespace. A missing path fails with
    /// <see cref="Errno.ENOENT"/>; any other file (or another namespace type) with <see cref="Errno.EINVAL"/>.
    /// </summary>
    public static NetNsHandle Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var operation = new Operation("open netns", path);
        // O_NONBLOCK: a FIFO at that path must fail the check below, not hang the open.
        var fd = Native.Open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) throw Errno.FromLast(operation);
        var ns = new NetNsHandle(fd);
        try
        {
            Verify(fd, operation);
            return ns;
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    /// <summary>The namespace of the calling thread (which, in this library, is never a setns()'d thread).</summary>
    public static NetNsHandle OpenCurrent() => Open("/proc/thread-self/ns/net");

    private static void Verify(int fd, in Operation operation)
    {
        var type = Native.FileSystemType(fd);
        if (type < 0) throw Errno.FromLast(operation);
        if (type != Native.NsfsMagic)
            throw new NetlinkException(operation.ToString(), Errno.EINVAL, "not a network namespace (the file is not on nsfs)");
        // nsfs holds every namespace type; /proc/PID/ns/mnt would pass the check above.
        var nsType = Native.Ioctl(fd, Native.NsGetNsType, 0);
        if (nsType < 0)
        {
            if (Errno.Last == Errno.ENOTTY) return; // kernel < 4.11 cannot tell; nsfs is the best we can check
            throw Errno.FromLast(operation);
        }
        if (nsType != CloneNewNet)
            throw new NetlinkException(operation.ToString(), Errno.EINVAL, $"not a network namespace (namespace type 0x{nsType:x})");
    }

    /// <summary>The nsfs inode identifying the namespace (st_dev, st_ino); equal identities are the same namespace.</summary>
    public unsafe (ulong Dev, ulong Ino) Identity
    {
        get
        {
            if (_identity is { } cached) return cached;
            var added = false;
            try
            {
                DangerousAddRef(ref added);
                stat st;
                if (fstat((int)handle, &st) != 0) throw Errno.FromLast(new Operation("fstat netns"));
                var identity = ((ulong)st.st_dev, (ulong)st.st_ino);
                _identity = identity;
                return identity;
            }
            finally
            {
                if (added) DangerousRelease();
            }
        }
    }

    public bool IsSameAs(NetNsHandle other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Identity == other.Identity;
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a new thread that has entered this namespace, and waits for it.
    /// setns() changes only the calling thread; that thread then ends, so no pooled or long-lived thread is
    /// ever left in a foreign namespace. What the action opens there (netlink sockets, /proc/sys/net files)
    /// stays bound to this namespace after the thread is gone. Exceptions propagate with their stack trace.
    /// </summary>
    public T RunInside<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var added = false;
        try
        {
            DangerousAddRef(ref added);
            var fd = (int)handle;
            T result = default!;
            ExceptionDispatchInfo? failure = null;
            var thread = new Thread(() =>
            {
                try
                {
                    if (setns(fd, CloneNewNet) != 0) throw Errno.FromLast(new Operation("setns(CLONE_NEWNET)"));
                    result = action();
                }
                catch (Exception e)
                {
                    failure = ExceptionDispatchInfo.Capture(e);
                }
            }, WorkerStackSize)
            {
                IsBackground = true,
                Name = "netns worker",
            };
            thread.UnsafeStart();
            thread.Join();
            failure?.Throw();
            return result;
        }
        finally
        {
            if (added) DangerousRelease();
        }
    }
}
