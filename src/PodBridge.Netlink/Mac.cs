using System.Globalization;

namespace PodBridge.Netlink;

/// <summary>48-bit Ethernet addresses as text.</summary>
public static class Mac
{
    /// <summary>Parses "aa:bb:cc:dd:ee:ff" (or with '-' separators, any hex case) into 6 bytes.</summary>
    /// <exception cref="FormatException">Anything else.</exception>
    public static byte[] Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Length != 17) throw Invalid(text);
        var separator = text[2];
        if (separator is not (':' or '-')) throw Invalid(text);
        var mac = new byte[6];
        for (var i = 0; i < 6; i++)
        {
            if (i > 0 && text[i * 3 - 1] != separator) throw Invalid(text);
            if (!byte.TryParse(text.AsSpan(i * 3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out mac[i]))
                throw Invalid(text);
        }
        return mac;
    }

    /// <summary>Lowercase hex octets joined by ':'; empty for an empty address.</summary>
    public static string Format(ReadOnlySpan<byte> mac)
    {
        if (mac.IsEmpty) return "";
        return string.Create(mac.Length * 3 - 1, mac, static (chars, bytes) =>
        {
            for (var i = 0; i < bytes.Length; i++)
            {
                if (i > 0) chars[i * 3 - 1] = ':';
                bytes[i].TryFormat(chars[(i * 3)..], out _, "x2", CultureInfo.InvariantCulture);
            }
        });
    }

    private static FormatException Invalid(string text) =>
        new($"'{text}' is not a MAC address (expected six hex octets like 02:42:ac:11:00:02)");
}
