using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace PodBridge.Ipam;

/// <summary>
/// An IPv4 or IPv6 address as a 128-bit integer, so range arithmetic is plain integer arithmetic: a /64 is
/// a pair of numbers, never an enumeration. IPv4 lives in the low 32 bits.
/// </summary>
public readonly record struct IpAddr(UInt128 Value, bool IsV6) : IComparable<IpAddr>
{
    public int Bits => IsV6 ? 128 : 32;

    /// <summary>The highest value of this family (255.255.255.255 or ffff:...:ffff).</summary>
    public UInt128 FamilyMax => IsV6 ? UInt128.MaxValue : uint.MaxValue;

    public static IpAddr FromIPAddress(IPAddress ip)
    {
        // host-local canonicalizes ::ffff:a.b.c.d to a.b.c.d; so do we, or a v4 range would reject it.
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        Span<byte> b = stackalloc byte[16];
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            ip.TryWriteBytes(b, out _);
            return new IpAddr(BinaryPrimitives.ReadUInt32BigEndian(b), false);
        }
        ip.TryWriteBytes(b, out _);
        return new IpAddr(BinaryPrimitives.ReadUInt128BigEndian(b), true);
    }

    public static bool TryParse(string? text, out IpAddr addr)
    {
        addr = default;
        // One address grammar for the whole plugin: dotted quads without leading zeros, IPv6 without scope.
        if (!PodBridge.Cni.IpCidr.TryParseAddress(text, out var ip)) return false;
        addr = FromIPAddress(ip);
        return true;
    }

    /// <summary>"address/prefix"; the address may have host bits set (callers decide whether that is an error).</summary>
    public static bool TryParseCidr(string? text, out IpAddr addr, out int prefix)
    {
        addr = default;
        prefix = 0;
        var slash = text?.IndexOf('/') ?? -1;
        if (slash <= 0 || !TryParse(text![..slash], out addr)) return false;
        if (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out prefix)) return false;
        return prefix <= addr.Bits;
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> b = stackalloc byte[16];
        if (!IsV6)
        {
            BinaryPrimitives.WriteUInt32BigEndian(b, (uint)Value);
            return new IPAddress(b[..4]);
        }
        BinaryPrimitives.WriteUInt128BigEndian(b, Value);
        return new IPAddress(b);
    }

    /// <summary>Fixed-width lowercase hex (8 digits for IPv4, 32 for IPv6): string order equals numeric order.</summary>
    public string ToHex() => IsV6 ? Value.ToString("x32") : ((uint)Value).ToString("x8");

    public static IpAddr FromHex(string hex, bool isV6) =>
        new(UInt128.Parse(hex, System.Globalization.NumberStyles.AllowHexSpecifier), isV6);

    /// <summary>Netmask of a prefix length in this family, e.g. /24 -> 0xffffff00.</summary>
    public static UInt128 Mask(int prefix, bool isV6)
    {
        var bits = isV6 ? 128 : 32;
        if (prefix == 0) return UInt128.Zero;
        var max = isV6 ? UInt128.MaxValue : uint.MaxValue;
        return (max << (bits - prefix)) & max;
    }

    public IpAddr Add(UInt128 n) => this with { Value = Value + n };
    public IpAddr Sub(UInt128 n) => this with { Value = Value - n };

    public int CompareTo(IpAddr other) =>
        IsV6 != other.IsV6 ? IsV6.CompareTo(other.IsV6) : Value.CompareTo(other.Value);

    public static bool operator <(IpAddr a, IpAddr b) => a.CompareTo(b) < 0;
    public static bool operator >(IpAddr a, IpAddr b) => a.CompareTo(b) > 0;
    public static bool operator <=(IpAddr a, IpAddr b) => a.CompareTo(b) <= 0;
    public static bool operator >=(IpAddr a, IpAddr b) => a.CompareTo(b) >= 0;

    public override string ToString() => ToIPAddress().ToString();
}
