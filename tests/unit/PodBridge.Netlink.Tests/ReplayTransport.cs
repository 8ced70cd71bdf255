using System.Runtime.InteropServices;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Tests;

/// <summary>
/// Plays back recorded or hand-built datagrams with MSG_TRUNC semantics, and records what was sent. Each
/// <see cref="Reply"/> call holds the datagrams that the next request releases, as the kernel would queue them.
/// </summary>
internal sealed class ReplayTransport(uint portId = KernelReplies.PortId) : INetlinkTransport
{
    private readonly Queue<byte[][]> _replies = new();
    private readonly Queue<byte[]> _datagrams = new();

    public uint PortId => portId;
    public List<byte[]> Sent { get; } = [];
    public int Receives { get; private set; }
    public bool Disposed { get; private set; }

    public ReplayTransport Reply(params byte[][] datagrams)
    {
        _replies.Enqueue(datagrams);
        return this;
    }

    public void Send(ReadOnlySpan<byte> request)
    {
        Sent.Add(request.ToArray());
        if (_replies.TryDequeue(out var reply))
            foreach (var d in reply) _datagrams.Enqueue(d);
    }

    public int Receive(Span<byte> buffer, bool dontWait)
    {
        if (!_datagrams.TryDequeue(out var datagram))
        {
            if (dontWait) return -1;
            throw new InvalidOperationException("the socket would block forever: no reply left to replay");
        }
        Receives++;
        datagram.AsSpan(0, Math.Min(datagram.Length, buffer.Length)).CopyTo(buffer);
        return datagram.Length;
    }

    public void Dispose() => Disposed = true;

    public uint SentSeq(int index) => MemoryMarshal.Read<uint>(Sent[index].AsSpan(8));

    /// <summary>One netlink message with the given header and payload, padded to 4 bytes.</summary>
    public static byte[] Message(ushort type, ushort flags, uint seq, uint pid, params byte[] payload)
    {
        var length = 16 + payload.Length;
        var message = new byte[(length + 3) & ~3];
        MemoryMarshal.Write(message, (uint)length);
        MemoryMarshal.Write(message.AsSpan(4), type);
        MemoryMarshal.Write(message.AsSpan(6), flags);
        MemoryMarshal.Write(message.AsSpan(8), seq);
        MemoryMarshal.Write(message.AsSpan(12), pid);
        payload.CopyTo(message, 16);
        return message;
    }

    /// <summary>A capped acknowledgement (NLMSG_ERROR) for request <paramref name="seq"/> with <paramref name="error"/> (0 or -errno).</summary>
    public static byte[] Ack(uint seq, int error, string? extAck = null, uint pid = KernelReplies.PortId)
    {
        var payload = new List<byte>();
        payload.AddRange(BitConverter.GetBytes(error));
        payload.AddRange(new byte[16]); // echoed nlmsghdr; contents irrelevant to the reader
        ushort flags = MessageFlags.Capped;
        if (extAck is not null)
        {
            flags |= MessageFlags.AckTlvs;
            payload.AddRange(Tlv(ErrorAttr.Msg, extAck));
        }
        return Message(MessageType.Error, flags, seq, pid, [.. payload]);
    }

    public static byte[] Tlv(ushort type, string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text + "\0");
        var tlv = new byte[(4 + bytes.Length + 3) & ~3];
        MemoryMarshal.Write(tlv, (ushort)(4 + bytes.Length));
        MemoryMarshal.Write(tlv.AsSpan(2), type);
        bytes.CopyTo(tlv, 4);
        return tlv;
    }

    /// <summary>A copy of <paramref name="datagram"/> with every message's seq replaced and <paramref name="addFlags"/> set.</summary>
    public static byte[] Restamp(byte[] datagram, uint seq, ushort addFlags = 0)
    {
        var copy = (byte[])datagram.Clone();
        for (var offset = 0; offset < copy.Length;)
        {
            var length = MemoryMarshal.Read<uint>(copy.AsSpan(offset));
            var flags = MemoryMarshal.Read<ushort>(copy.AsSpan(offset + 6));
            MemoryMarshal.Write(copy.AsSpan(offset + 6), (ushort)(flags | addFlags));
            MemoryMarshal.Write(copy.AsSpan(offset + 8), seq);
            offset += (int)((length + 3) & ~3u);
        }
        return copy;
    }
}
