using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Nftables;

/// <summary>A base chain's hook: which netfilter hook, which chain type, which priority; policy accept.</summary>
public sealed record NftHook(string Type, NftHookNum Hook, int Priority);

public enum NftHookNum : uint
{
    PreRouting = 0,                              // NF_INET_PRE_ROUTING
    Input = 1,                                   // NF_INET_LOCAL_IN
    Forward = 2,                                 // NF_INET_FORWARD
    Output = 3,                                  // NF_INET_LOCAL_OUT
    PostRouting = 4,                             // NF_INET_POST_ROUTING
}

/// <summary>
/// One nf_tables transaction: everything between NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END is applied by the
/// kernel all or nothing, so a table can be replaced (add, delete, add again with its new content) without a
/// moment in which packets see it half-built or missing. Every message asks for an ack, so the commit learns
/// which one failed.
/// </summary>
public sealed class NftBatch(NftFamily family)
{
    private readonly List<Op> _ops = [];
    private uint _nextSetId = 1;

    public NftFamily Family { get; } = family;
    public int Count => _ops.Count;

    private abstract record Op;
    private sealed record AddTableOp(string Name, byte[]? UserData) : Op;
    private sealed record DeleteTableOp(string Name) : Op;
    private sealed record AddChainOp(string Table, string Name, NftHook? Hook) : Op;
    private sealed record AddRuleOp(string Table, string Chain, NftExpr[] Expressions, string? Comment = null) : Op;
    private sealed record FlushChainOp(string Table, string Chain) : Op;
    private sealed record AddSetOp(string Table, string Name, AddressFamily KeyFamily, uint Id) : Op;
    private sealed record ElementsOp(bool Add, string Table, string Set, uint SetId, byte[][] Keys, byte[]?[] UserData) : Op;

    /// <summary>`add table`: creates it, or leaves an existing one as it is. <paramref name="userData"/>: NFTA_TABLE_USERDATA (kernel 5.13+).</summary>
    public NftBatch AddTable(string name, byte[]? userData = null) => Add(new AddTableOp(name, userData));

    /// <summary>`delete table`: with everything in it. Fails (ENOENT) when absent: precede it with <see cref="AddTable"/>.</summary>
    public NftBatch DeleteTable(string name) => Add(new DeleteTableOp(name));

    /// <summary>`add chain`; with <paramref name="hook"/> a base chain with policy accept.</summary>
    public NftBatch AddChain(string table, string name, NftHook? hook = null) => Add(new AddChainOp(table, name, hook));

    /// <summary>`add rule`: appended to the chain.</summary>
    public NftBatch AddRule(string table, string chain, params NftExpr[] expressions) => Add(new AddRuleOp(table, chain, expressions));

    /// <summary>`add rule ... comment "TEXT"`: the comment goes into NFTA_RULE_USERDATA the way nft writes it, so `nft list` shows it.</summary>
    public NftBatch AddRule(string table, string chain, string comment, params NftExpr[] expressions)
    {
        // nft's udata TLV: u8 type NFTNL_UDATA_RULE_COMMENT (0), u8 length, the NUL-terminated text.
        if (System.Text.Encoding.UTF8.GetByteCount(comment) > 127) throw new ArgumentException("nft comments are at most 127 bytes", nameof(comment));
        return Add(new AddRuleOp(table, chain, expressions, comment));
    }

    /// <summary>`flush chain`: NFT_MSG_DELRULE naming only the chain deletes every rule in it.</summary>
    public NftBatch FlushChain(string table, string chain) => Add(new FlushChainOp(table, chain));

    /// <summary>`add set` of IPv4 or IPv6 addresses (hash, no intervals). Returns the set id a lookup in this batch refers to it by.</summary>
    public uint AddSet(string table, string name, AddressFamily keyFamily)
    {
        var id = _nextSetId++;
        _ops.Add(new AddSetOp(table, name, keyFamily, id));
        return id;
    }

    /// <summary>`add element`; <paramref name="setId"/> when the set is created in this same batch.</summary>
    public NftBatch AddElements(string table, string set, IEnumerable<IPAddress> addresses, uint setId = 0) =>
        AddElements(table, set, addresses.Select(a => (a, (string?)null)), setId);

    /// <summary>
    /// `add element { ADDRESS comment "TEXT" }`: the comment goes into NFTA_SET_ELEM_USERDATA the way nft writes it
    /// (so `nft list` shows it and <see cref="NfTablesSocket.ListSetElementsWithComments"/> reads it back).
    /// An element already present stays as it is (no NLM_F_EXCL), its comment included.
    /// </summary>
    public NftBatch AddElements(string table, string set, IEnumerable<(IPAddress Address, string? Comment)> elements, uint setId = 0)
    {
        var list = elements.ToList();
        return Add(new ElementsOp(true, table, set, setId, [.. list.Select(e => e.Address.GetAddressBytes())],
            [.. list.Select(e => e.Comment is null ? null : CommentTlv(e.Comment))]));
    }

    /// <summary>`delete element`: fails (ENOENT) when one is absent.</summary>
    public NftBatch DeleteElements(string table, string set, IEnumerable<IPAddress> addresses)
    {
        var keys = addresses.Select(a => a.GetAddressBytes()).ToArray();
        return Add(new ElementsOp(false, table, set, 0, keys, new byte[]?[keys.Length]));
    }

    /// <summary>
    /// nft's userdata TLV holding a comment (libnftnl's NFTNL_UDATA_RULE_COMMENT / NFTNL_UDATA_SET_ELEM_COMMENT, both
    /// type 0): u8 type, u8 length, the NUL-terminated text; at most 128 bytes with the NUL, as nft enforces.
    /// </summary>
    internal static byte[] CommentTlv(string comment)
    {
        var text = System.Text.Encoding.UTF8.GetBytes(comment);
        if (text.Length > 127) throw new ArgumentException("nft comments are at most 127 bytes", nameof(comment));
        var udata = new byte[text.Length + 3];
        udata[0] = 0;
        udata[1] = (byte)(text.Length + 1);
        text.CopyTo(udata, 2);
        return udata;
    }

    private NftBatch Add(Op op)
    {
        _ops.Add(op);
        return this;
    }

    /// <summary>An upper bound of the encoded size.</summary>
    internal int MaxSize => 64 + _ops.Sum(op => op switch
    {
        AddRuleOp r => 128 + r.Expressions.Length * 160,
        ElementsOp e => 256 + e.Keys.Length * 40 + e.UserData.Sum(u => (u?.Length ?? 0) + 8),
        AddTableOp t => 128 + (t.UserData?.Length ?? 0),
        _ => 256,
    });

    /// <summary>
    /// Encodes begin, one message per operation (nlmsg_seq <paramref name="firstSeq"/>+1, +2, ...), end. Returns
    /// the length; the operations' sequence numbers are firstSeq+1 .. firstSeq+<see cref="Count"/>.
    /// </summary>
    internal int Encode(Span<byte> buffer, uint firstSeq)
    {
        var length = 0;
        var seq = firstSeq;
        length += Message(buffer[length..], NfNetlink.BatchBegin, MessageFlags.Request, 0, seq++, NfNetlink.SubsysNftables,
            static (ref NetlinkWriter _) => { });
        foreach (var op in _ops)
            length += EncodeOp(buffer[length..], op, seq++);
        length += Message(buffer[length..], NfNetlink.BatchEnd, MessageFlags.Request, 0, seq, NfNetlink.SubsysNftables,
            static (ref NetlinkWriter _) => { });
        return length;
    }

    private const ushort NewFlags = MessageFlags.Request | MessageFlags.Ack | MessageFlags.Create;
    private const ushort DelFlags = MessageFlags.Request | MessageFlags.Ack;

    private int EncodeOp(Span<byte> buffer, Op op, uint seq)
    {
        var family = (byte)Family;
        switch (op)
        {
            case AddTableOp t:
                return Message(buffer, NfNetlink.Type(NftMsg.NewTable), NewFlags, family, seq, 0, (ref NetlinkWriter w) =>
                {
                    w.WriteString(TableAttr.Name, t.Name);
                    if (t.UserData is { } data) w.WriteAttribute(TableAttr.UserData, data);
                });
            case DeleteTableOp t:
                return Message(buffer, NfNetlink.Type(NftMsg.DelTable), DelFlags, family, seq, 0,
                    (ref NetlinkWriter w) => w.WriteString(TableAttr.Name, t.Name));
            case AddChainOp c:
                return Message(buffer, NfNetlink.Type(NftMsg.NewChain), NewFlags, family, seq, 0, (ref NetlinkWriter w) =>
                {
                    w.WriteString(ChainAttr.Table, c.Table);
                    w.WriteString(ChainAttr.Name, c.Name);
                    if (c.Hook is not { } hook) return;
                    // nft's attribute order, so the bytes compare with an strace of nft.
                    w.WriteString(ChainAttr.Type, hook.Type);
                    NftExpr.WriteBe32(ref w, ChainAttr.Policy, 1); // NF_ACCEPT
                    using (w.BeginNested(ChainAttr.Hook))
                    {
                        NftExpr.WriteBe32(ref w, HookAttr.HookNum, (uint)hook.Hook);
                        NftExpr.WriteBe32(ref w, HookAttr.Priority, (uint)hook.Priority);
                    }
                });
            case AddRuleOp r:
                return Message(buffer, NfNetlink.Type(NftMsg.NewRule), NewFlags | MessageFlags.Append, family, seq, 0, (ref NetlinkWriter w) =>
                {
                    w.WriteString(RuleAttr.Table, r.Table);
                    w.WriteString(RuleAttr.Chain, r.Chain);
                    if (r.Comment is { } comment) w.WriteAttribute(RuleAttr.UserData, CommentTlv(comment));
                    using (w.BeginNested(RuleAttr.Expressions))
                    {
                        foreach (var expr in r.Expressions)
                        {
                            using (w.BeginNested(ListAttr.Elem))
                            {
                                w.WriteString(ExprAttr.Name, expr.Name);
                                using (w.BeginNested(ExprAttr.Data)) expr.WriteData(ref w);
                            }
                        }
                    }
                });
            case FlushChainOp f:
                return Message(buffer, NfNetlink.Type(NftMsg.DelRule), DelFlags, family, seq, 0, (ref NetlinkWriter w) =>
                {
                    w.WriteString(RuleAttr.Table, f.Table);
                    w.WriteString(RuleAttr.Chain, f.Chain);
                });
            case AddSetOp s:
                return Message(buffer, NfNetlink.Type(NftMsg.NewSet), NewFlags, family, seq, 0, (ref NetlinkWriter w) =>
                {
                    var v4 = s.KeyFamily == AddressFamily.InterNetwork;
                    w.WriteString(SetAttr.Table, s.Table);
                    w.WriteString(SetAttr.Name, s.Name);
                    NftExpr.WriteBe32(ref w, SetAttr.Flags, 0);
                    NftExpr.WriteBe32(ref w, SetAttr.KeyType, v4 ? 7u : 8u); // nft's TYPE_IPADDR / TYPE_IP6ADDR
                    NftExpr.WriteBe32(ref w, SetAttr.KeyLen, v4 ? 4u : 16u);
                    NftExpr.WriteBe32(ref w, SetAttr.Id, s.Id);
                });
            case ElementsOp e:
                return Message(buffer, NfNetlink.Type(e.Add ? NftMsg.NewSetElem : NftMsg.DelSetElem), e.Add ? NewFlags : DelFlags,
                    family, seq, 0, (ref NetlinkWriter w) =>
                    {
                        w.WriteString(SetElemListAttr.Table, e.Table);
                        w.WriteString(SetElemListAttr.Set, e.Set);
                        using (w.BeginNested(SetElemListAttr.Elements))
                        {
                            for (var i = 0; i < e.Keys.Length; i++)
                            {
                                using (w.BeginNested(ListAttr.Elem))
                                {
                                    NftExpr.WriteValue(ref w, SetElemAttr.Key, e.Keys[i]);
                                    if (e.UserData[i] is { } udata) w.WriteAttribute(SetElemAttr.UserData, udata);
                                }
                            }
                        }
                        if (e.SetId != 0) NftExpr.WriteBe32(ref w, 4 /* NFTA_SET_ELEM_LIST_SET_ID */, e.SetId);
                    });
            default:
                throw new InvalidOperationException($"unknown nftables operation {op}");
        }
    }

    internal delegate void Body(ref NetlinkWriter w);

    /// <summary>nlmsghdr, struct nfgenmsg { nfgen_family, version, res_id (big-endian) }, then the body's attributes.</summary>
    internal static int Message(Span<byte> buffer, ushort type, ushort flags, byte family, uint seq, ushort resId, Body body)
    {
        var w = new NetlinkWriter(buffer);
        w.WriteHeader(type, flags);
        Span<byte> nfgen = [family, NfNetlink.Version0, 0, 0];
        BinaryPrimitives.WriteUInt16BigEndian(nfgen[2..], resId);
        w.WriteStruct(MemoryMarshal.Read<uint>(nfgen));
        body(ref w);
        var length = w.Finish();
        MemoryMarshal.Write(buffer[8..], in seq); // nlmsg_seq
        return length;
    }
}
