using System.Text;
using Microsoft.Win32.SafeHandles;

namespace PodBridge.Netlink;

/// <summary>
/// /proc/sys files. The /proc/sys/net tree belongs to the network namespace of the thread that opens the
/// file, so per-namespace settings are read and written inside <see cref="NetNsHandle.RunInside{T}"/>.
/// Failures other than "missing" surface as <see cref="IOException"/> / <see cref="UnauthorizedAccessException"/>.
/// </summary>
public static class Sysctl
{
    /// <summary>The trimmed content, or null when the file does not exist (module not loaded, IPv6 disabled).</summary>
    public static string? Read(string path)
    {
        using var file = TryOpen(path, FileAccess.Read);
        if (file is null) return null;
        Span<byte> buffer = stackalloc byte[256];
        var total = 0;
        var text = new StringBuilder();
        while (true)
        {
            var read = RandomAccess.Read(file, buffer, total);
            if (read == 0) break;
            text.Append(Encoding.UTF8.GetString(buffer[..read]));
            total += read;
        }
        return text.ToString().Trim();
    }

    /// <summary>
    /// Makes <paramref name="path"/> hold <paramref name="value"/>, writing only when it differs (a write may
    /// have side effects, e.g. ip_forward resets other settings). False when the file does not exist.
    /// </summary>
    public static bool EnsureValue(string path, string value)
    {
        var current = Read(path);
        if (current is null) return false;
        if (current == value.Trim()) return true;
        using var file = TryOpen(path, FileAccess.Write);
        if (file is null) return false;
        RandomAccess.Write(file, Encoding.UTF8.GetBytes(value), 0);
        return true;
    }

    private static SafeFileHandle? TryOpen(string path, FileAccess access)
    {
        try
        {
            // FileMode.Open: procfs refuses O_CREAT/O_TRUNC semantics we do not need anyway.
            return File.OpenHandle(path, FileMode.Open, access, FileShare.ReadWrite);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }
}
