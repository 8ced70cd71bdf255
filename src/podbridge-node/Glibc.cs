using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;

namespace PodBridge.Node;

/// <summary>
/// The binaries are linked against the build machine's glibc; an older glibc on the node fails every pod with
/// "version `GLIBC_2.34' not found" from the dynamic loader, which kubelet reports far from the cause. So the
/// agent compares the highest GLIBC_x.y symbol version the binaries require with the node's glibc first.
/// </summary>
public static partial class Glibc
{
    /// <summary>The running glibc's version (the agent runs against the node's libc when it is not in an image).</summary>
    public static Version? Running()
    {
        try
        {
            var text = Marshal.PtrToStringUTF8(GnuGetLibcVersion());
            return Version.TryParse(text, out var v) ? v : null;
        }
        catch (EntryPointNotFoundException)
        {
            return null; // not glibc (musl): nothing to compare against
        }
    }

    /// <summary>
    /// The highest "GLIBC_x.y" version string in the file: the ELF version-needed entries (.gnu.version_r) name
    /// every glibc version the binary requires, as `objdump -T` shows them. Null when it needs none.
    /// </summary>
    public static Version? Required(string path)
    {
        var bytes = File.ReadAllBytes(path);
        ReadOnlySpan<byte> marker = "GLIBC_"u8;
        Version? max = null;
        var span = bytes.AsSpan();
        for (var i = span.IndexOf(marker); i >= 0;)
        {
            var start = i + marker.Length;
            var end = start;
            while (end < span.Length && (char.IsAsciiDigit((char)span[end]) || span[end] == '.')) end++;
            if (end < span.Length && span[end] == 0 && Version.TryParse(Encoding.ASCII.GetString(span[start..end]), out var v)
                && (max is null || v > max))
                max = v;
            var next = span[start..].IndexOf(marker);
            i = next < 0 ? -1 : start + next;
        }
        return max;
    }

    /// <summary>
    /// An ELF executable without a program interpreter (PT_INTERP) is statically linked: the dynamic loader never runs
    /// and the node's glibc does not matter (podbridge and podbridge-ipam are built so). Its text still holds libc's own
    /// GLIBC_x.y strings, which <see cref="Required"/> would misread as requirements.
    /// </summary>
    public static bool IsStaticExecutable(string path)
    {
        const uint PtInterp = 3, PtDynamic = 2;
        using var file = File.OpenRead(path);
        Span<byte> header = stackalloc byte[64];
        if (file.ReadAtLeast(header, header.Length, throwOnEndOfStream: false) < header.Length) return false;
        // ELF64, little-endian, ET_EXEC or ET_DYN.
        if (!header[..4].SequenceEqual("\x7fELF"u8) || header[4] != 2 || header[5] != 1) return false;
        var type = BinaryPrimitives.ReadUInt16LittleEndian(header[16..]);
        if (type is not (2 or 3)) return false;
        var phoff = (long)BinaryPrimitives.ReadUInt64LittleEndian(header[32..]);
        var phentsize = BinaryPrimitives.ReadUInt16LittleEndian(header[54..]);
        var phnum = BinaryPrimitives.ReadUInt16LittleEndian(header[56..]);
        if (phentsize < 56 || phnum == 0) return false;
        var table = new byte[phentsize * phnum];
        file.Position = phoff;
        if (file.ReadAtLeast(table, table.Length, throwOnEndOfStream: false) < table.Length) return false;
        for (var i = 0; i < phnum; i++)
        {
            var ptype = BinaryPrimitives.ReadUInt32LittleEndian(table.AsSpan(i * phentsize));
            if (ptype is PtInterp or PtDynamic) return false;
        }
        return true;
    }

    [LibraryImport("libc", EntryPoint = "gnu_get_libc_version")]
    private static partial IntPtr GnuGetLibcVersion();
}
