using System.Buffers.Binary;
using System.Runtime.InteropServices;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Nftables;

/// <summary>A table as NFT_MSG_NEWTABLE reports it.</summary>
/// <param name="Use">NFTA_TABLE_USE: how many chains, sets and objects it holds.</param>
/// <param name="UserData">NFTA_TABLE_USERDATA as written (nft keeps its comment there); empty when none.</param>
public sealed record NftTableInfo(NftFamily Family, string Name, ulong Handle, uint Use, byte[] UserData);

/// <summary>A rule as NFT_MSG_NEWRULE reports it: where it is and which expressions it runs, by name.</summary>
public sealed record NftRuleInfo(string Table, string Chain, ulong Handle, IReadOnlyList<string> Expressions);

/// <summary>An address set element as NFT_MSG_NEWSETELEM reports it; <paramref name="Comment"/> from nft's userdata TLV, else null.</summary>
public sealed record NftSetElement(System.Net.IPAddress Address, string? Comment);

/// <summary>
/// A NETLINK_NETFILTER socket speaking nf_tables, bound to one network namespace: commits <see cref="NftBatch"/>
/// transactions and reads back tables and rules. What `nft -f` does, without the exec and without the nft package
/// in the image. Not thread-safe.
/// </summary>
public sealed class NfTablesSocket : IDisposable
{
    private readonly INetlinkTransport _transport;
    private byte[] _receive = GC.AllocateUninitializedArray<byte>(32 * 1024);
    private uint _seq;

    internal NfTablesSocket(INetlinkTransport transport, uint lastSequence = 0)
    {
        _transport = transport;
        _seq = lastSequence;
    }

    public static NfTablesSocket Open() => new(KernelTransport.Open(NetlinkProtocol.Netfilter));

    /// <summary>A socket in <paramref name="ns"/>; only its creation runs inside (see <see cref="RtNetlinkSocket.OpenIn(NetNsHandle)"/>).</summary>
    public static NfTablesSocket OpenIn(NetNsHandle ns) => new(ns.RunInside(() => KernelTransport.Open(NetlinkProtocol.Netfilter)));

    /// <summary>
    /// Sends the batch as one transaction and waits for every message's ack. On failure nothing of the batch is
    /// applied; the exception names the failing operation's position and the kernel's errno and message.
    /// </summary>
    public void Commit(NftBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0) return;
        var buffer = new byte[batch.MaxSize];
        var first = _seq + 1;
        var length = batch.Encode(buffer, first);
        _seq += (uint)batch.Count + 2;
        _transport.Send(buffer.AsSpan(0, length));

        // Acks come for the operations (seq first+1 .. first+Count); an error on the begin message (no nf_tables
        // in this kernel) comes for seq first.
        var pending = new ReplyTracker[batch.Count + 1];
        pending[0] = new ReplyTracker(first, _transport.PortId, ReplyKind.Ack);
        for (var i = 1; i <= batch.Count; i++) pending[i] = new ReplyTracker(first + (uint)i, _transport.PortId, ReplyKind.Ack);
        var answered = 0;
        var failed = -1;
        while (answered < batch.Count && failed < 0)
        {
            var received = Receive(dontWait: false);
            Dispatch(received, pending, ref answered, ref failed);
        }
        if (failed >= 0)
        {
            // The kernel queues all answers of a batch at once: take the rest so the next request starts clean.
            while (_transport.Receive(_receive, dontWait: true) is var n && n >= 0)
                Dispatch(Math.Min(n, _receive.Length), pending, ref answered, ref failed);
            var t = pending[failed];
            var what = failed == 0 ? "nf_tables batch begin" : $"nf_tables batch operation {failed} of {batch.Count}";
            throw new NetlinkException(what, t.Error, t.ErrorMessage);
        }
    }

    private void Dispatch(int received, ReplyTracker[] pending, ref int answered, ref int failed)
    {
        var reader = new NetlinkReader(_receive.AsSpan(0, received));
        while (reader.TryRead(out var message))
        {
            var index = (int)(message.Header.Seq - pending[0].Seq);
            if (index < 0 || index >= pending.Length || pending[index].IsComplete) continue;
            pending[index].Accept(in message);
            if (!pending[index].IsComplete) continue;
            if (index > 0) answered++;
            if (pending[index].Error != 0 && (failed < 0 || index < failed)) failed = index;
        }
    }

    /// <summary>The table, or null when it does not exist.</summary>
    public NftTableInfo? GetTable(NftFamily family, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var buffer = new byte[256];
        var length = NftBatch.Message(buffer, NfNetlink.Type(NftMsg.GetTable), MessageFlags.Request | MessageFlags.Ack, (byte)family,
            ++_seq, 0, (ref NetlinkWriter w) => w.WriteString(TableAttr.Name, name));
        var results = Exchange(buffer.AsSpan(0, length), ReplyKind.Single, ParseTable, $"NFT_MSG_GETTABLE {name}");
        return results?.FirstOrDefault();
    }

    /// <summary>Every rule of <paramref name="table"/>, in chain order; empty when the table does not exist.</summary>
    public IReadOnlyList<NftRuleInfo> ListRules(NftFamily family, string table)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        var buffer = new byte[256];
        var length = NftBatch.Message(buffer, NfNetlink.Type(NftMsg.GetRule), MessageFlags.Request | MessageFlags.Dump, (byte)family,
            ++_seq, 0, (ref NetlinkWriter w) => w.WriteString(RuleAttr.Table, table));
        return Exchange(buffer.AsSpan(0, length), ReplyKind.Dump, ParseRule, $"NFT_MSG_GETRULE dump {table}") ?? [];
    }

    /// <summary>
    /// The addresses in an address set (what `nft list set` shows; the plugin's CHECK asks whether a pod's address is
    /// there); null when the table or set does not exist.
    /// </summary>
    public IReadOnlyList<System.Net.IPAddress>? ListSetElements(NftFamily family, string table, string set) =>
        ListSetElementsWithComments(family, table, set)?.Select(e => e.Address).ToList();

    /// <summary>The elements of an address set with their comments; null when the table or set does not exist.</summary>
    public IReadOnlyList<NftSetElement>? ListSetElementsWithComments(NftFamily family, string table, string set)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        ArgumentException.ThrowIfNullOrEmpty(set);
        var buffer = new byte[1024];
        var length = NftBatch.Message(buffer, NfNetlink.Type(NftMsg.GetSetElem), MessageFlags.Request | MessageFlags.Dump, (byte)family,
            ++_seq, 0, (ref NetlinkWriter w) =>
            {
                w.WriteString(SetElemListAttr.Table, table);
                w.WriteString(SetElemListAttr.Set, set);
            });
        var batches = Exchange(buffer.AsSpan(0, length), ReplyKind.Dump, ParseSetElements, $"NFT_MSG_GETSETELEM dump {table} {set}");
        return batches?.SelectMany(b => b).ToList();
    }

    /// <summary>The names of the sets in <paramref name="table"/>; empty when the table does not exist.</summary>
    public IReadOnlyList<string> ListSets(NftFamily family, string table)
    {
        ArgumentException.ThrowIfNullOrEmpty(table);
        var buffer = new byte[512];
        var length = NftBatch.Message(buffer, NfNetlink.Type(NftMsg.GetSet), MessageFlags.Request | MessageFlags.Dump, (byte)family,
            ++_seq, 0, (ref NetlinkWriter w) => w.WriteString(SetAttr.Table, table));
        var sets = Exchange(buffer.AsSpan(0, length), ReplyKind.Dump, ParseSet, $"NFT_MSG_GETSET dump {table}") ?? [];
        // A dump filtered by table name still reports every table's sets on kernels that ignore the filter.
        return [.. sets.Where(s => s.Table == table).Select(s => s.Name)];
    }

    private sealed record SetName(string Table, string Name);

    private static SetName? ParseSet(in NetlinkMessage message)
    {
        if (message.Type != NfNetlink.Type(NftMsg.NewSet) || message.Payload.Length < 4) return null;
        var attributes = new AttributeReader(message.Payload[4..]);
        string table = "", name = "";
        while (attributes.TryRead(out var a))
        {
            if (a.Type == SetAttr.Table) table = a.String;
            else if (a.Type == SetAttr.Name) name = a.String;
        }
        return new SetName(table, name);
    }

    internal static List<NftSetElement>? ParseSetElements(in NetlinkMessage message)
    {
        if (message.Type != NfNetlink.Type(NftMsg.NewSetElem) || message.Payload.Length < 4) return null;
        var result = new List<NftSetElement>();
        var attributes = new AttributeReader(message.Payload[4..]);
        while (attributes.TryRead(out var a))
        {
            if (a.Type != SetElemListAttr.Elements) continue;
            var elements = a.Nested;
            while (elements.TryRead(out var element))
            {
                System.Net.IPAddress? address = null;
                string? comment = null;
                var fields = element.Nested;
                while (fields.TryRead(out var field))
                {
                    if (field.Type == SetElemAttr.Key)
                    {
                        var data = field.Nested;
                        while (data.TryRead(out var value))
                            if (value.Type == DataAttr.Value && value.Value.Length is 4 or 16) address = new System.Net.IPAddress(value.Value);
                    }
                    else if (field.Type == SetElemAttr.UserData)
                    {
                        comment = CommentOf(field.Value);
                    }
                }
                if (address is not null) result.Add(new NftSetElement(address, comment));
            }
        }
        return result;
    }

    /// <summary>The comment TLV (type 0) of nft's userdata, without its NUL; null when there is none.</summary>
    internal static string? CommentOf(ReadOnlySpan<byte> udata)
    {
        while (udata.Length >= 2)
        {
            var (type, length) = (udata[0], udata[1]);
            if (2 + length > udata.Length) return null;
            var value = udata.Slice(2, length);
            if (type == 0) return System.Text.Encoding.UTF8.GetString(value.IndexOf((byte)0) is var nul and >= 0 ? value[..nul] : value);
            udata = udata[(2 + length)..];
        }
        return null;
    }

    private delegate T? Parser<T>(in NetlinkMessage message) where T : class;

    /// <returns>null when the kernel answered ENOENT (no such table).</returns>
    private List<T>? Exchange<T>(ReadOnlySpan<byte> request, ReplyKind kind, Parser<T> parse, string operation) where T : class
    {
        var seq = MemoryMarshal.Read<uint>(request[8..]);
        _transport.Send(request);
        var tracker = new ReplyTracker(seq, _transport.PortId, kind);
        var results = new List<T>();
        while (!tracker.IsComplete)
        {
            var received = Receive(dontWait: false);
            var reader = new NetlinkReader(_receive.AsSpan(0, received));
            while (reader.TryRead(out var message))
            {
                if (!tracker.Accept(in message)) continue;
                if (parse(in message) is { } item) results.Add(item);
            }
        }
        if (tracker.Error == Errno.ENOENT) return null;
        if (tracker.Error != 0) throw new NetlinkException(operation, tracker.Error, tracker.ErrorMessage);
        return results;
    }

    private int Receive(bool dontWait)
    {
        var received = _transport.Receive(_receive, dontWait);
        if (received > _receive.Length)
        {
            // Netfilter dumps size their datagrams to our buffer; a bigger one means we must read again larger.
            _receive = GC.AllocateUninitializedArray<byte>((received + 4095) & ~4095);
            throw new NetlinkException("nf_tables receive", Errno.EMSGSIZE, $"a {received}-byte reply did not fit; retry");
        }
        return received;
    }

    internal static NftTableInfo? ParseTable(in NetlinkMessage message)
    {
        if (message.Type != NfNetlink.Type(NftMsg.NewTable) || message.Payload.Length < 4) return null;
        var family = (NftFamily)message.Payload[0];
        var attributes = new AttributeReader(message.Payload[4..]);
        string name = "";
        ulong handle = 0;
        uint use = 0;
        byte[] userData = [];
        while (attributes.TryRead(out var a))
        {
            switch (a.Type)
            {
                case TableAttr.Name: name = a.String; break;
                case TableAttr.Use: use = BinaryPrimitives.ReadUInt32BigEndian(a.Value); break;
                case TableAttr.Handle: handle = BinaryPrimitives.ReadUInt64BigEndian(a.Value); break;
                case TableAttr.UserData: userData = a.Value.ToArray(); break;
            }
        }
        return new NftTableInfo(family, name, handle, use, userData);
    }

    internal static NftRuleInfo? ParseRule(in NetlinkMessage message)
    {
        if (message.Type != NfNetlink.Type(NftMsg.NewRule) || message.Payload.Length < 4) return null;
        var attributes = new AttributeReader(message.Payload[4..]);
        string table = "", chain = "";
        ulong handle = 0;
        var expressions = new List<string>();
        while (attributes.TryRead(out var a))
        {
            switch (a.Type)
            {
                case RuleAttr.Table: table = a.String; break;
                case RuleAttr.Chain: chain = a.String; break;
                case RuleAttr.Handle: handle = BinaryPrimitives.ReadUInt64BigEndian(a.Value); break;
                case RuleAttr.Expressions:
                    var list = a.Nested;
                    while (list.TryRead(out var element))
                    {
                        var fields = element.Nested;
                        while (fields.TryRead(out var field))
                            if (field.Type == ExprAttr.Name) expressions.Add(field.String);
                    }
                    break;
            }
        }
        return new NftRuleInfo(table, chain, handle, expressions);
    }

    public void Dispose() => _transport.Dispose();
}
