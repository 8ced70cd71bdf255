using System.Runtime.InteropServices;

namespace PodBridge.Node;

/// <summary>
/// Writes a file so that a reader (kubelet exec'ing a plugin, the runtime reading the conf dir) sees either the
/// old content or the new one, never a half-written file: a temp file in the same directory (so rename is
/// atomic), fsync, rename, fsync of the directory. Unchanged content is not written at all, so mtime and inode
/// stay as they were and a restart of the agent changes nothing.
/// </summary>
public static partial class AtomicFile
{
    /// <returns>true when the file was written, false when it already had this content (and mode).</returns>
    public static bool WriteIfChanged(string path, ReadOnlySpan<byte> content, UnixFileMode mode)
    {
        if (SameContent(path, content) && File.GetUnixFileMode(path) == mode) return false;
        var dir = Path.GetDirectoryName(path) ?? throw new ArgumentException($"{path} has no directory", nameof(path));
        Directory.CreateDirectory(dir);
        // Leading dot: the runtime's conf-dir scan and a plugin lookup by name both ignore it.
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.{Random.Shared.Next():x8}.tmp");
        try
        {
            using (var stream = new FileStream(temp, new FileStreamOptions
                   {
                       Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = mode,
                   }))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }
            File.SetUnixFileMode(temp, mode); // the umask may have narrowed UnixCreateMode
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { }
            throw;
        }
        SyncDirectory(dir);
        return true;
    }

    public static bool SameContent(string path, ReadOnlySpan<byte> content)
    {
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists || info.Length != content.Length) return false;
            return content.SequenceEqual(File.ReadAllBytes(path));
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The rename is durable only once the directory entry is on disk.</summary>
    private static void SyncDirectory(string dir)
    {
        var fd = Open(dir, 0x10000 /* O_RDONLY | O_DIRECTORY */ | 0x80000 /* O_CLOEXEC */);
        if (fd < 0) return; // best effort: the content is already fsynced
        _ = FSync(fd);
        _ = Close(fd);
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
