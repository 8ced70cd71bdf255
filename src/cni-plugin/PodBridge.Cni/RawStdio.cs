using System.Runtime.InteropServices;

namespace PodBridge.Cni;

/// <summary>
/// stdin and stdout as plain file descriptors. <see cref="Console"/> would initialise the terminal layer (a
/// signal-handling thread, encodings, a 4 KiB-per-stream setup) and copy stdin through a pooled 128 KiB buffer on
/// the large-object heap: start-up cost on every invocation for reading a few KiB of JSON and writing one line.
/// </summary>
public static partial class RawStdio
{
    private const int EINTR = 4, EAGAIN = 11;
    private const short POLLIN = 1, POLLOUT = 4;

    /// <summary>Reads <paramref name="fd"/> to end of file. IOException names the errno.</summary>
    public static byte[] ReadAll(int fd)
    {
        var buffer = new byte[8192];
        var length = 0;
        while (true)
        {
            if (length == buffer.Length) Array.Resize(ref buffer, buffer.Length * 2);
            var n = Read(fd, buffer.AsSpan(length));
            if (n == 0) break;
            length += n;
        }
        return buffer.AsSpan(0, length).ToArray();
    }

    /// <summary>Writes all of <paramref name="data"/>, retrying partial writes and EINTR.</summary>
    public static unsafe void WriteAll(int fd, ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
        {
            var done = 0;
            while (done < data.Length)
            {
                var n = write(fd, p + done, (nuint)(data.Length - done));
                if (n >= 0) { done += (int)n; continue; }
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                if (errno == EAGAIN) { Wait(fd, POLLOUT); continue; }
                throw Error("write to", fd, errno);
            }
        }
    }

    private static unsafe int Read(int fd, Span<byte> into)
    {
        fixed (byte* p = into)
        {
            while (true)
            {
                var n = read(fd, p, (nuint)into.Length);
                if (n >= 0) return (int)n;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR) continue;
                // A runtime may hand over a non-blocking pipe: wait for it like a blocking read would.
                if (errno == EAGAIN) { Wait(fd, POLLIN); continue; }
                throw Error("read from", fd, errno);
            }
        }
    }

    private static unsafe void Wait(int fd, short events)
    {
        var pfd = new PollFd { Fd = fd, Events = events };
        while (poll(&pfd, 1, -1) < 0 && Marshal.GetLastPInvokeError() == EINTR) { }
    }

    private static IOException Error(string what, int fd, int errno) =>
        new($"{what} {(fd == 0 ? "stdin" : fd == 1 ? "stdout" : $"fd {fd}")}: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");

    /// <summary>A write-only stream over a descriptor: every Write is write(2) calls, nothing is buffered.</summary>
    public sealed class FdWriter(int fd) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => WriteAll(fd, buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer) => WriteAll(fd, buffer);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static unsafe partial int poll(PollFd* fds, nuint nfds, int timeout);
}
