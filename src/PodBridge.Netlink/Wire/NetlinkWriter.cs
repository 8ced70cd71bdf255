using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace PodBridge.Netlink.Wire;

/// <summary>
/// Builds one netlink request in a caller-owned buffer: the nlmsghdr, a fixed family header, then rtattrs.
/// Every attribute is padded to 4 bytes with zeros (the kernel rejects nothing for dirty padding, but tests and
/// captures must be deterministic); nested attributes get their length when their <see cref="Nest"/> is disposed.
/// </summary>
internal ref struct NetlinkWriter
{
    public const int Alignment = 4;         // NLMSG_ALIGNTO == NLA_ALIGNTO

    private readonly Span<byte> _buffer;
    private int _length;

    public NetlinkWriter(Span<byte> buffer) => _buffer = buffer;

    public readonly int Length => _length;
    public readonly ReadOnlySpan<byte> Written => _buffer[.._length];

    public static int Align(int length) => (length + Alignment - 1) & ~(Alignment - 1);

    /// <summary>Starts the message; <see cref="Finish"/> fills in nlmsg_len. nlmsg_seq is set by the socket at send time.</summary>
    public void WriteHeader(ushort type, ushort flags)
    {
        if (_length != 0) throw new InvalidOperationException("a netlink request holds exactly one message");
        var header = new NlMsgHdr { Type = type, Flags = flags };
        MemoryMarshal.Write(Reserve(NlMsgHdr.Size), in header);
    }

    public int Finish()
    {
        MemoryMarshal.Write(_buffer, (uint)_length); // nlmsg_len
        return _length;
    }

    /// <summary>A fixed family header (ifinfomsg, ifaddrmsg, rtmsg); all are multiples of 4 bytes.</summary>
    public void WriteStruct<T>(in T value) where T : unmanaged
    {
        MemoryMarshal.Write(Reserve(Align(Unsafe.SizeOf<T>())), in value);
    }

    public void WriteAttribute(ushort type, scoped ReadOnlySpan<byte> value)
    {
        var total = 4 + value.Length;
        if (total > ushort.MaxValue) throw new ArgumentException($"attribute {type} is too long ({value.Length} bytes)");
        var span = Reserve(Align(total));
        WriteAttributeHeader(span, (ushort)total, type);
        value.CopyTo(span[4..]);
    }

    public void WriteU8(ushort type, byte value) => WriteAttribute(type, [value]);

    public void WriteU32(ushort type, uint value)
    {
        var span = Reserve(8);
        WriteAttributeHeader(span, 8, type);
        MemoryMarshal.Write(span[4..], in value);
    }

    public void WriteI32(ushort type, int value) => WriteU32(type, (uint)value);

    /// <summary>A NUL-terminated string (NLA_NUL_STRING / NLA_STRING both accept it).</summary>
    public void WriteString(ushort type, string value) => WriteString(type, value, nulTerminated: true);

    /// <summary>
    /// IFLA_INFO_KIND is compared with nla_strcmp, which accepts both forms; iproute2 sends it without the NUL,
    /// and so do we, so that captures of both tools look the same.
    /// </summary>
    public void WriteString(ushort type, string value, bool nulTerminated)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        var total = 4 + bytes + (nulTerminated ? 1 : 0);
        var span = Reserve(Align(total));
        WriteAttributeHeader(span, (ushort)total, type);
        Encoding.UTF8.GetBytes(value, span[4..]);
    }

    /// <summary>An IPv4 or IPv6 address in network byte order (4 or 16 bytes).</summary>
    public void WriteAddress(ushort type, IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out var written)) throw new ArgumentException($"cannot encode address {address}");
        WriteAttribute(type, bytes[..written]);
    }

    /// <summary>
    /// Opens a nested attribute. Its rta_len covers everything written until the returned scope is disposed.
    /// <paramref name="nestedFlag"/> sets NLA_F_NESTED; some readers (AF_BRIDGE IFLA_PROTINFO) decide the payload
    /// format from it, while VETH_INFO_PEER must not carry it because its payload starts with an ifinfomsg.
    /// </summary>
    [UnscopedRef]
    public Nest BeginNested(ushort type, bool nestedFlag = true)
    {
        var start = _length;
        WriteAttributeHeader(Reserve(4), 0, nestedFlag ? (ushort)(type | AttrFlags.Nested) : type);
        return new Nest(_buffer, ref _length, start);
    }

    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length)
            throw new InvalidOperationException($"netlink request needs more than {_buffer.Length} bytes");
        var span = _buffer.Slice(_length, count);
        span.Clear(); // alignment padding must be zero, and the buffer is reused between requests
        _length += count;
        return span;
    }

    private static void WriteAttributeHeader(Span<byte> span, ushort length, ushort type)
    {
        MemoryMarshal.Write(span, in length);          // rta_len: unpadded
        MemoryMarshal.Write(span[2..], in type);       // rta_type
    }

    /// <summary>Back-patches the nested attribute's rta_len on dispose.</summary>
    public readonly ref struct Nest
    {
        private readonly Span<byte> _buffer;
        private readonly ref int _length;
        private readonly int _start;

        internal Nest(Span<byte> buffer, ref int length, int start)
        {
            _buffer = buffer;
            _length = ref length;
            _start = start;
        }

        public void Dispose()
        {
            var length = _length - _start;
            if (length > ushort.MaxValue) throw new InvalidOperationException("nested attribute exceeds 64 KiB");
            MemoryMarshal.Write(_buffer[_start..], (ushort)length);
        }
    }
}
