using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace PodBridge.Ipam.Warm;

/// <summary>
/// A unix stream socket on raw syscalls with deadlines (poll), for the warm IPAM: the plugin side must stay a few
/// syscalls (no System.Net.Sockets start-up in every plugin process), and every wait must be bounded so a hung
/// server turns into the in-process fallback instead of a hung pod start.
/// </summary>
internal sealed partial class UnixSocket : IDisposable
{
    private const int AF_UNIX = 1, SOCK_STREAM = 1, SOCK_NONBLOCK = 0x800, SOCK_CLOEXEC = 0x80000;
    private const int ENOENT = 2, EINTR = 4, EAGAIN = 11, ECONNREFUSED = 111, EINPROGRESS = 115;
    private const short POLLIN = 1, POLLOUT = 4;
    private const int MSG_NOSIGNAL = 0x4000;

    private int _fd;
    private volatile bool _closing;

    private UnixSocket(int fd) => _fd = fd;

    /// <summary>Connects without blocking past <paramref name="deadline"/>; IOException when there is no server.</summary>
    public static UnixSocket Connect(string path, long deadline) =>
        TryConnect(path, deadline) ?? throw Error($"connect {path}", ECONNREFUSED);

    /// <summary>
    /// Like <see cref="Connect"/>, but "no server" (no socket file, or nobody listening on it) is null, not an
    /// exception: that is the normal case on a node without the warm server, and a thrown exception is what a plugin
    /// process would spend most of that call on.
    /// </summary>
    public static UnixSocket? TryConnect(string path, long deadline)
    {
        var s = new UnixSocket(Check(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), "socket"));
        try
        {
            var addr = Address(path);
            int rc;
            unsafe { rc = connect(s._fd, &addr, (uint)sizeof(SockAddrUn)); }
            if (rc < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is ENOENT or ECONNREFUSED)
                {
                    s.Dispose();
                    return null;
                }
                // A full backlog: the kernel completes the connect once the server accepts (or never, if it hangs).
                if (errno is not (EAGAIN or EINPROGRESS)) throw Error($"connect {path}", errno);
                s.Wait(POLLOUT, deadline, "connect");
            }
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>A listening socket at <paramref name="path"/>, mode 0600 (only root may connect).</summary>
    public static UnixSocket Listen(string path)
    {
        var s = new UnixSocket(Check(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket"));
        try
        {
            var addr = Address(path);
            // The umask covers the window between bind and chmod: the socket is never connectable by others.
            var old = umask(0x3f /* 077 */);
            try
            {
                unsafe { Check(bind(s._fd, &addr, (uint)sizeof(SockAddrUn)), $"bind {path}"); }
            }
            finally { umask(old); }
            Check(chmod(path, 0x180 /* 0600 */), $"chmod {path}");
            Check(listen(s._fd, 128), "listen");
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Blocks until a client connects (or the socket is shut down: null).</summary>
    public UnixSocket? Accept()
    {
        while (true)
        {
            var fd = accept4(_fd, 0, 0, SOCK_CLOEXEC);
            if (fd >= 0) return new UnixSocket(fd);
            var errno = Marshal.GetLastPInvokeError();
            if (_closing) return null;
            if (errno is EINTR or 103 /* ECONNABORTED */) continue;
            throw Error("accept", errno);
        }
    }

    /// <summary>Wakes a thread blocked in <see cref="Accept"/> (server shutdown).</summary>
    public void Shutdown()
    {
        _closing = true;
        shutdown(_fd, 2);
    }

    public void SendAll(ReadOnlySpan<byte> data, long deadline)
    {
        var done = 0;
        while (done < data.Length)
        {
            nint n;
            unsafe
            {
                fixed (byte* p = data[done..]) n = send(_fd, p, (nuint)(data.Length - done), MSG_NOSIGNAL);
            }
            if (n >= 0) { done += (int)n; continue; }
            var errno = Marshal.GetLastPInvokeError();
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { Wait(POLLOUT, deadline, "send"); continue; }
            throw Error("send", errno);
        }
    }

    /// <summary>Fills <paramref name="into"/> completely; IOException on end of stream or past the deadline.</summary>
    public void ReceiveExactly(Span<byte> into, long deadline)
    {
        var done = 0;
        while (done < into.Length)
        {
            Wait(POLLIN, deadline, "receive");
            nint n;
            unsafe
            {
                fixed (byte* p = into[done..]) n = recv(_fd, p, (nuint)(into.Length - done), 0x40 /* MSG_DONTWAIT */);
            }
            if (n > 0) { done += (int)n; continue; }
            if (n == 0) throw new EndOfStreamException("the IPAM server closed the connection");
            var errno = Marshal.GetLastPInvokeError();
            if (errno is EINTR or EAGAIN) continue;
            throw Error("receive", errno);
        }
    }

    /// <summary>Deadlines are Stopwatch timestamps.</summary>
    public static long DeadlineIn(TimeSpan t) => Stopwatch.GetTimestamp() + (long)(t.TotalSeconds * Stopwatch.Frequency);

    private unsafe void Wait(short events, long deadline, string what)
    {
        while (true)
        {
            var left = deadline - Stopwatch.GetTimestamp();
            if (left <= 0) throw new TimeoutException($"IPAM server: {what} timed out");
            var ms = (int)Math.Max(1, Math.Min(int.MaxValue, left * 1000 / Stopwatch.Frequency));
            var pfd = new PollFd { Fd = _fd, Events = events };
            var rc = poll(&pfd, 1, ms);
            if (rc > 0) return;
            if (rc < 0 && Marshal.GetLastPInvokeError() != EINTR) throw Error("poll", Marshal.GetLastPInvokeError());
        }
    }

    public void Dispose()
    {
        var fd = _fd;
        _fd = -1;
        if (fd >= 0) close(fd);
    }

    private static SockAddrUn Address(string path)
    {
        var bytes = Encoding.UTF8.GetBytes(path);
        if (bytes.Length >= 108) throw new IOException($"socket path {path} is longer than 107 bytes");
        var addr = new SockAddrUn { Family = AF_UNIX };
        unsafe
        {
            for (var i = 0; i < bytes.Length; i++) addr.Path[i] = bytes[i];
        }
        return addr;
    }

    private static int Check(int rc, string what) => rc >= 0 ? rc : throw Error(what, Marshal.GetLastPInvokeError());

    private static IOException Error(string what, int errno) =>
        new($"{what}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})") { HResult = errno };

    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct SockAddrUn
    {
        public ushort Family;
        public fixed byte Path[108];
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", SetLastError = true)] private static partial int socket(int domain, int type, int protocol);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial int connect(int fd, SockAddrUn* addr, uint len);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial int bind(int fd, SockAddrUn* addr, uint len);
    [LibraryImport("libc", SetLastError = true)] private static partial int listen(int fd, int backlog);
    [LibraryImport("libc", SetLastError = true)] private static partial int accept4(int fd, nint addr, nint len, int flags);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial nint send(int fd, byte* buf, nuint len, int flags);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial nint recv(int fd, byte* buf, nuint len, int flags);
    [LibraryImport("libc", SetLastError = true)] private static unsafe partial int poll(PollFd* fds, nuint n, int timeout);
    [LibraryImport("libc", SetLastError = true)] private static partial int shutdown(int fd, int how);
    [LibraryImport("libc", SetLastError = true)] private static partial int close(int fd);
    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)] private static partial int chmod(string path, uint mode);
    [LibraryImport("libc")] private static partial uint umask(uint mask);
}
