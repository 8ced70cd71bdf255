using Microsoft.Win32.SafeHandles;

namespace PodBridge.Ipam;

/// <summary>
/// The stream LiteDB reads and writes its data and log files through (EngineSettings.DataStream/LogStream).
/// We supply it because LiteDB 5.0.21 never fsyncs the log on commit: with its own FileStreams a committed
/// transaction sits in the page cache until the next checkpoint. Here <see cref="Flush"/> is fdatasync (LiteDB
/// calls it after writing the data file in a checkpoint) and the store calls <see cref="Sync"/> on the log
/// right after each commit. Unbuffered pread/pwrite, no FileStream (whose FileShare emulation takes flocks).
/// </summary>
internal sealed class SyncedFile : Stream
{
    private readonly SafeFileHandle _handle;
    private long _length;
    private long _position;

    public SyncedFile(string path)
    {
        Path = path;
        _handle = Native.Open(path, Tmds.Linux.LibC.O_RDWR | Tmds.Linux.LibC.O_CREAT);
        _length = RandomAccess.GetLength(_handle);
    }

    public string Path { get; }

    /// <summary>Number of fdatasync calls, for tests that check every commit reaches the disk.</summary>
    public int Syncs { get; private set; }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => _length;

    public override long Position
    {
        get => _position;
        set => _position = value;
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        var total = 0;
        while (total < count)
        {
            var n = RandomAccess.Read(_handle, buffer.AsSpan(offset + total, count - total), _position);
            if (n == 0) break;
            total += n;
            _position += n;
        }
        return total;
    }

    public override void Write(byte[] buffer, int offset, int count)
    {
        RandomAccess.Write(_handle, new ReadOnlySpan<byte>(buffer, offset, count), _position);
        _position += count;
        if (_position > _length) _length = _position;
    }

    public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
    {
        SeekOrigin.Begin => offset,
        SeekOrigin.Current => _position + offset,
        _ => _length + offset,
    };

    public override void SetLength(long value)
    {
        Native.Ftruncate(_handle, value, Path);
        _length = value;
        if (_position > value) _position = value;
    }

    public override void Flush() => Sync();

    public void Sync()
    {
        Native.Fdatasync(_handle, Path);
        Syncs++;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _handle.Dispose();
        base.Dispose(disposing);
    }
}
