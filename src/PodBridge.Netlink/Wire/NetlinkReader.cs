using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace PodBridge.Netlink.Wire;

/// <summary>One message of a received datagram; <see cref="Payload"/> excludes the nlmsghdr.</summary>
internal readonly ref struct NetlinkMessage(NlMsgHdr header, ReadOnlySpan<byte> payload)
{
    public readonly NlMsgHdr Header = header;
    public readonly ReadOnlySpan<byte> Payload = payload;

    public ushort Type => Header.Type;
    public ushort Flags => Header.Flags;

    /// <summary>
    /// The fixed family header at the start of the payload, and the attributes after it. A payload shorter
    /// than the header is malformed: the kernel never sends one.
    /// </summary>
    public T ReadFixed<T>(out AttributeReader attributes) where T : unmanaged
    {
        var size = Unsafe.SizeOf<T>();
        if (Payload.Length < size)
            throw NetlinkReader.Malformed($"message type {Type} has {Payload.Length} payload bytes, fewer than its {size}-byte header");
        attributes = new AttributeReader(Payload[NetlinkWriter.Align(size)..]);
        return MemoryMarshal.Read<T>(Payload);
    }
}

/// <summary>Walks the messages of one datagram. Lengths are validated before any slice is taken.</summary>
internal ref struct NetlinkReader(ReadOnlySpan<byte> datagram)
{
    private ReadOnlySpan<byte> _rest = datagram;

    public bool TryRead(out NetlinkMessage message)
    {
        if (_rest.IsEmpty) { message = default; return false; }
        if (_rest.Length < NlMsgHdr.Size)
            throw Malformed($"{_rest.Length} trailing bytes are too short for an nlmsghdr");
        var header = MemoryMarshal.Read<NlMsgHdr>(_rest);
        if (header.Length < NlMsgHdr.Size || header.Length > _rest.Length)
            throw Malformed($"nlmsg_len {header.Length} does not fit the {_rest.Length} bytes left");
        message = new NetlinkMessage(header, _rest[NlMsgHdr.Size..(int)header.Length]);
        // The last message of a datagram may lack its trailing padding.
        _rest = _rest[Math.Min(NetlinkWriter.Align((int)header.Length), _rest.Length)..];
        return true;
    }

    internal static NetlinkException Malformed(string detail) => new("parse netlink reply", Errno.EBADMSG, detail);
}

/// <summary>One rtattr; <see cref="Type"/> has NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off.</summary>
internal readonly ref struct NetlinkAttribute(ushort rawType, ReadOnlySpan<byte> value)
{
    public readonly ReadOnlySpan<byte> Value = value;
    public ushort Type => (ushort)(rawType & AttrFlags.TypeMask);
    public bool IsNestedFlagSet => (rawType & AttrFlags.Nested) != 0;

    public byte U8 => Value.Length >= 1 ? Value[0] : throw Short(1);
    public uint U32 => Value.Length >= 4 ? MemoryMarshal.Read<uint>(Value) : throw Short(4);
    public int I32 => (int)U32;

    /// <summary>Up to the first NUL; the kernel terminates strings but we do not rely on it.</summary>
    public string String
    {
        get
        {
            var end = Value.IndexOf((byte)0);
            return Encoding.UTF8.GetString(end < 0 ? Value : Value[..end]);
        }
    }

    public IPAddress Address => Value.Length is 4 or 16 ? new IPAddress(Value) : throw Short(4);

    public AttributeReader Nested => new(Value);

    private NetlinkException Short(int needed) =>
        NetlinkReader.Malformed($"attribute {Type} has {Value.Length} bytes, expected at least {needed}");
}

/// <summary>Walks a run of rtattrs (a message's attributes or a nested attribute's payload).</summary>
internal ref struct AttributeReader(ReadOnlySpan<byte> attributes)
{
    private ReadOnlySpan<byte> _rest = attributes;

    public bool TryRead(out NetlinkAttribute attribute)
    {
        if (_rest.Length < 4)
        {
            // Fewer than 4 bytes can only be padding; nla_ok() in the kernel stops the same way.
            attribute = default;
            _rest = default;
            return false;
        }
        var length = MemoryMarshal.Read<ushort>(_rest);
        var type = MemoryMarshal.Read<ushort>(_rest[2..]);
        if (length < 4 || length > _rest.Length)
            throw NetlinkReader.Malformed($"rta_len {length} of attribute {type & AttrFlags.TypeMask} does not fit the {_rest.Length} bytes left");
        attribute = new NetlinkAttribute(type, _rest[4..length]);
        _rest = _rest[Math.Min(NetlinkWriter.Align(length), _rest.Length)..];
        return true;
    }
}
