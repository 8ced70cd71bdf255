using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Nftables;

/// <summary>
/// One nf_tables expression of a rule. Expressions that load something load into NFT_REG_1 and the ones that
/// compare read it from there: a rule here is always "load, maybe mask, compare" steps then a verdict, which is
/// all masquerading needs. <see cref="NftMatch"/> builds the usual steps.
/// </summary>
public abstract record NftExpr
{
    internal abstract string Name { get; }

    /// <summary>Writes NFTA_EXPR_DATA's attributes; nothing for expressions without any.</summary>
    internal abstract void WriteData(ref NetlinkWriter w);

    internal static void WriteBe32(ref NetlinkWriter w, ushort type, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        w.WriteAttribute(type, bytes);
    }

    /// <summary>NFTA_DATA_VALUE inside a nested data attribute (cmp data, bitwise mask/xor, set keys).</summary>
    internal static void WriteValue(ref NetlinkWriter w, ushort type, ReadOnlySpan<byte> value)
    {
        using (w.BeginNested(type)) w.WriteAttribute(DataAttr.Value, value);
    }
}

/// <summary>meta load (NFT_META_*), e.g. the packet's protocol family in an inet table.</summary>
public sealed record NftMeta(NftMetaKey Key) : NftExpr
{
    internal override string Name => "meta";
    internal override void WriteData(ref NetlinkWriter w)
    {
        // nft's order (key, then register), so the bytes compare with an strace of nft.
        WriteBe32(ref w, ExprFields.MetaKey, (uint)Key);
        WriteBe32(ref w, ExprFields.MetaDreg, NftReg.R1);
    }
}

public enum NftMetaKey : uint
{
    NfProto = 15,                                // NFT_META_NFPROTO
}

/// <summary>payload load: <see cref="Length"/> bytes at <see cref="Offset"/> of a header.</summary>
public sealed record NftPayload(NftPayloadBase Base, uint Offset, uint Length) : NftExpr
{
    internal override string Name => "payload";
    internal override void WriteData(ref NetlinkWriter w)
    {
        WriteBe32(ref w, ExprFields.PayloadDreg, NftReg.R1);
        WriteBe32(ref w, ExprFields.PayloadBase, (uint)Base);
        WriteBe32(ref w, ExprFields.PayloadOffset, Offset);
        WriteBe32(ref w, ExprFields.PayloadLen, Length);
    }
}

public enum NftPayloadBase : uint
{
    LinkLayer = 0,                               // NFT_PAYLOAD_LL_HEADER
    Network = 1,                                 // NFT_PAYLOAD_NETWORK_HEADER
    Transport = 2,                               // NFT_PAYLOAD_TRANSPORT_HEADER
}

/// <summary>bitwise: register = (register &amp; mask) ^ 0, how a prefix match masks the host bits.</summary>
public sealed record NftBitwise(byte[] Mask) : NftExpr
{
    internal override string Name => "bitwise";
    internal override void WriteData(ref NetlinkWriter w)
    {
        WriteBe32(ref w, ExprFields.BitwiseSreg, NftReg.R1);
        WriteBe32(ref w, ExprFields.BitwiseDreg, NftReg.R1);
        WriteBe32(ref w, ExprFields.BitwiseLen, (uint)Mask.Length);
        WriteValue(ref w, ExprFields.BitwiseMask, Mask);
        WriteValue(ref w, ExprFields.BitwiseXor, new byte[Mask.Length]);
    }
}

/// <summary>cmp: the rule goes on only when the register compares to <see cref="Data"/> as <see cref="Op"/> says.</summary>
public sealed record NftCmp(NftCmpOp Op, byte[] Data) : NftExpr
{
    internal override string Name => "cmp";
    internal override void WriteData(ref NetlinkWriter w)
    {
        WriteBe32(ref w, ExprFields.CmpSreg, NftReg.R1);
        WriteBe32(ref w, ExprFields.CmpOp, (uint)Op);
        WriteValue(ref w, ExprFields.CmpData, Data);
    }
}

public enum NftCmpOp : uint
{
    Eq = 0,                                      // NFT_CMP_EQ
    Neq = 1,                                     // NFT_CMP_NEQ
}

/// <summary>lookup: the register's value is (or with <see cref="Invert"/>, is not) an element of the set.</summary>
/// <param name="SetId">NFTA_LOOKUP_SET_ID of a set created in the same batch (<see cref="NftBatch.AddSet"/>), else 0.</param>
public sealed record NftLookup(string Set, bool Invert = false, uint SetId = 0) : NftExpr
{
    internal override string Name => "lookup";
    internal override void WriteData(ref NetlinkWriter w)
    {
        w.WriteString(ExprFields.LookupSet, Set);
        WriteBe32(ref w, ExprFields.LookupSreg, NftReg.R1);
        if (SetId != 0) WriteBe32(ref w, ExprFields.LookupSetId, SetId);
        if (Invert) WriteBe32(ref w, ExprFields.LookupFlags, 1); // NFT_LOOKUP_F_INV
    }
}

/// <summary>immediate verdict: accept, drop, return (to the hook: the chain's policy applies).</summary>
public sealed record NftVerdict(NftVerdictCode Code) : NftExpr
{
    internal override string Name => "immediate";
    internal override void WriteData(ref NetlinkWriter w)
    {
        WriteBe32(ref w, ExprFields.ImmediateDreg, NftReg.Verdict);
        using (w.BeginNested(ExprFields.ImmediateData))
        using (w.BeginNested(DataAttr.Verdict))
            WriteBe32(ref w, VerdictAttr.Code, (uint)Code);
    }
}

public enum NftVerdictCode
{
    Drop = 0,                                    // NF_DROP
    Accept = 1,                                  // NF_ACCEPT
    Continue = -1,                               // NFT_CONTINUE
    Return = -5,                                 // NFT_RETURN
}

/// <summary>masq: source NAT to the address of the interface the packet leaves by.</summary>
public sealed record NftMasquerade : NftExpr
{
    internal override string Name => "masq";
    internal override void WriteData(ref NetlinkWriter w) { }
}

/// <summary>counter: packets and bytes, read back with the rule (nft shows it as `counter`).</summary>
public sealed record NftCounter : NftExpr
{
    internal override string Name => "counter";
    internal override void WriteData(ref NetlinkWriter w) { }
}

/// <summary>The match steps nft compiles `ip saddr 10.0.0.0/8`, `meta nfproto ipv6` and the like into.</summary>
public static class NftMatch
{
    /// <summary>`meta nfproto ipv4|ipv6`: needed first in an inet table before reading IP header fields.</summary>
    public static NftExpr[] Family(AddressFamily family) =>
        [new NftMeta(NftMetaKey.NfProto), new NftCmp(NftCmpOp.Eq, [(byte)(family == AddressFamily.InterNetwork ? NftFamily.Ip : NftFamily.Ip6)])];

    /// <summary>
    /// `ip|ip6 saddr|daddr [!=] NETWORK`, compiled as nft 1.0 compiles it: a prefix of whole bytes loads and
    /// compares just those bytes; any other prefix loads the whole address and masks it first.
    /// </summary>
    public static NftExpr[] Address(bool source, IPNetwork network, bool negate = false)
    {
        var v4 = network.BaseAddress.AddressFamily == AddressFamily.InterNetwork;
        var length = v4 ? 4 : 16;
        // IPv4: saddr at 12, daddr at 16; IPv6: saddr at 8, daddr at 24.
        var offset = v4 ? (source ? 12u : 16u) : (source ? 8u : 24u);
        var prefix = network.PrefixLength;
        if (prefix == 0) throw new ArgumentException("a /0 network matches every address; leave the match out", nameof(network));
        var value = network.BaseAddress.GetAddressBytes();
        var op = negate ? NftCmpOp.Neq : NftCmpOp.Eq;
        if (prefix % 8 == 0)
            return [new NftPayload(NftPayloadBase.Network, offset, (uint)(prefix / 8)), new NftCmp(op, value[..(prefix / 8)])];
        var mask = new byte[length];
        for (var bit = 0; bit < prefix; bit++) mask[bit / 8] |= (byte)(0x80 >> (bit % 8));
        for (var i = 0; i < value.Length; i++) value[i] &= mask[i];
        return [new NftPayload(NftPayloadBase.Network, offset, (uint)length), new NftBitwise(mask), new NftCmp(op, value)];
    }

    /// <summary>`ip|ip6 saddr|daddr [!=] @set`.</summary>
    public static NftExpr[] AddressInSet(AddressFamily family, bool source, string set, bool negate = false, uint setId = 0)
    {
        var v4 = family == AddressFamily.InterNetwork;
        var offset = v4 ? (source ? 12u : 16u) : (source ? 8u : 24u);
        return [new NftPayload(NftPayloadBase.Network, offset, v4 ? 4u : 16u), new NftLookup(set, negate, setId)];
    }
}
