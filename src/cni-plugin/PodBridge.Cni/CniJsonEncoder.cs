using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;

namespace PodBridge.Cni;

/// <summary>
/// The escaping of everything podbridge prints as JSON: what JSON requires (control characters, '"', '\') plus C1
/// controls, U+2028/U+2029 and characters outside the BMP (as surrogate pairs), so messages with ' &lt; &gt; &amp; or
/// accented letters read as written: the output of <see cref="JavaScriptEncoder.UnsafeRelaxedJsonEscaping"/> for the
/// text podbridge prints. Its own type because the framework's encoders build
/// a table of every allowed Unicode range in their static constructor, a start-up cost paid by each invocation
/// for the few strings a result holds.
/// </summary>
public sealed class CniJsonEncoder : JavaScriptEncoder
{
    public static readonly CniJsonEncoder Instance = new();

    private CniJsonEncoder() { }

    public override int MaxOutputCharactersPerInputCharacter => 6; // \uXXXX

    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar < 0x20 || unicodeScalar is '"' or '\\' or (>= 0x7F and <= 0x9F) or 0x2028 or 0x2029
        || (unicodeScalar is >= 0xD800 and <= 0xDFFF) || unicodeScalar > 0xFFFF;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        for (var i = 0; i < textLength; i++)
        {
            if (WillEncode(text[i])) return i;
        }
        return -1;
    }

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        for (var i = 0; i < utf8Text.Length;)
        {
            var b = utf8Text[i];
            if (b < 0x80)
            {
                if (WillEncode(b)) return i;
                i++;
                continue;
            }
            if (Rune.DecodeFromUtf8(utf8Text[i..], out var rune, out var n) != OperationStatus.Done || WillEncode(rune.Value))
                return i;
            i += n;
        }
        return -1;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        numberOfCharactersWritten = 0;
        if (!WillEncode(unicodeScalar))
        {
            if (!Rune.TryCreate(unicodeScalar, out var rune)) return false;
            if (!rune.TryEncodeToUtf16(new Span<char>(buffer, bufferLength), out numberOfCharactersWritten)) return false;
            return true;
        }
        var escape = unicodeScalar switch
        {
            '\b' => "\\b",
            '\t' => "\\t",
            '\n' => "\\n",
            '\f' => "\\f",
            '\r' => "\\r",
            '"' => "\\\"",
            '\\' => "\\\\",
            _ => null,
        };
        if (escape is not null)
        {
            if (bufferLength < escape.Length) return false;
            escape.AsSpan().CopyTo(new Span<char>(buffer, bufferLength));
            numberOfCharactersWritten = escape.Length;
            return true;
        }
        if (unicodeScalar is > 0xFFFF and <= 0x10FFFF)
        {
            // Outside the BMP: the surrogate pair, each half escaped.
            if (bufferLength < 12) return false;
            var v = unicodeScalar - 0x10000;
            WriteU(buffer, 0xD800 + (v >> 10));
            WriteU(buffer + 6, 0xDC00 + (v & 0x3FF));
            numberOfCharactersWritten = 12;
            return true;
        }
        if (bufferLength < 6) return false;
        // A lone surrogate is no scalar to print: the replacement character.
        WriteU(buffer, unicodeScalar is >= 0 and <= 0xFFFF and not (>= 0xD800 and <= 0xDFFF) ? unicodeScalar : 0xFFFD);
        numberOfCharactersWritten = 6;
        return true;
    }

    private static unsafe void WriteU(char* buffer, int v)
    {
        buffer[0] = '\\';
        buffer[1] = 'u';
        for (var k = 0; k < 4; k++) buffer[2 + k] = "0123456789ABCDEF"[(v >> (12 - 4 * k)) & 0xF];
    }
}
