using System.Runtime.InteropServices;

namespace PodBridge.Netlink.Wire;

internal enum ReplyKind
{
    /// <summary>NLM_F_ACK request: the reply is one NLMSG_ERROR (error 0 = success).</summary>
    Ack,
    /// <summary>A get by key: the reply is one data message, or NLMSG_ERROR.</summary>
    Single,
    /// <summary>NLM_F_DUMP: data messages flagged NLM_F_MULTI, possibly over many datagrams, then NLMSG_DONE.</summary>
    Dump,
}

/// <summary>
/// Decides, message by message, whether a received message answers the request in flight, and when the
/// answer is complete. Messages with another nlmsg_seq or nlmsg_pid are skipped: they are late replies to an
/// earlier request that was abandoned, not ours.
/// </summary>
internal struct ReplyTracker(uint seq, uint portId, ReplyKind kind)
{
    public readonly uint Seq = seq;
    public readonly uint PortId = portId;
    public readonly ReplyKind Kind = kind;

    public bool IsComplete { get; private set; }
    /// <summary>Positive errno from NLMSG_ERROR or from a failed dump's NLMSG_DONE; 0 when none.</summary>
    public int Error { get; private set; }
    /// <summary>NLMSGERR_ATTR_MSG, the kernel's explanation of <see cref="Error"/>.</summary>
    public string? ErrorMessage { get; private set; }
    /// <summary>NLM_F_DUMP_INTR: the dumped table changed during the dump; the result may be inconsistent.</summary>
    public bool Interrupted { get; private set; }
    public int Skipped { get; private set; }

    /// <summary>True when <paramref name="message"/> is a data message of our reply that the caller should parse.</summary>
    public bool Accept(in NetlinkMessage message)
    {
        if (IsComplete || message.Header.Seq != Seq || message.Header.PortId != PortId)
        {
            Skipped++;
            return false;
        }
        if ((message.Flags & MessageFlags.DumpInterrupted) != 0) Interrupted = true;

        switch (message.Type)
        {
            case MessageType.Noop:
                return false;
            case MessageType.Error:
                ReadError(in message);
                IsComplete = true;
                return false;
            case MessageType.Done:
                ReadDone(in message);
                IsComplete = true;
                return false;
            case MessageType.Overrun:
                Error = Errno.ENOBUFS;
                IsComplete = true;
                return false;
            default:
                if (Kind == ReplyKind.Single) IsComplete = true;
                // An Ack request gets no data; anything else with our seq is ignored rather than misparsed.
                return Kind != ReplyKind.Ack;
        }
    }

    // struct nlmsgerr { int error; struct nlmsghdr msg; [payload unless NLM_F_CAPPED]; [TLVs if NLM_F_ACK_TLVS] }
    private void ReadError(in NetlinkMessage message)
    {
        var payload = message.Payload;
        if (payload.Length < 4 + NlMsgHdr.Size)
            throw NetlinkReader.Malformed($"NLMSG_ERROR has {payload.Length} bytes, fewer than struct nlmsgerr");
        var error = MemoryMarshal.Read<int>(payload);
        Error = -error;
        if (error == 0 || (message.Flags & MessageFlags.AckTlvs) == 0) return;

        var echoed = MemoryMarshal.Read<NlMsgHdr>(payload[4..]);
        var tlvStart = 4 + ((message.Flags & MessageFlags.Capped) != 0
            ? NlMsgHdr.Size
            : NetlinkWriter.Align((int)echoed.Length));
        if (tlvStart > payload.Length)
            throw NetlinkReader.Malformed($"NLMSG_ERROR echoes a {echoed.Length}-byte request but carries only {payload.Length - 4} bytes");
        ErrorMessage = FindMessage(payload[tlvStart..]);
    }

    // NLMSG_DONE carries the dump's final status as an int, then extended-ack TLVs when NLM_F_ACK_TLVS is set.
    private void ReadDone(in NetlinkMessage message)
    {
        var payload = message.Payload;
        if (payload.Length < 4) return;
        var error = MemoryMarshal.Read<int>(payload);
        if (error >= 0) return;
        Error = -error;
        if ((message.Flags & MessageFlags.AckTlvs) != 0) ErrorMessage = FindMessage(payload[4..]);
    }

    private static string? FindMessage(ReadOnlySpan<byte> tlvs)
    {
        var attributes = new AttributeReader(tlvs);
        while (attributes.TryRead(out var attribute))
            if (attribute.Type == ErrorAttr.Msg) return attribute.String;
        return null;
    }
}
