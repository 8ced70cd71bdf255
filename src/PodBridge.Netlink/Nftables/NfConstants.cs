namespace PodBridge.Netlink.Nftables;

// Kernel uapi constants (include/uapi/linux/netfilter/{nfnetlink,nf_tables}.h, linux/netfilter.h).
// Every integer attribute of nf_tables is big-endian (NLA_BE32), unlike rtnetlink's host order.

internal static class NfNetlink
{
    public const byte SubsysNftables = 10;       // NFNL_SUBSYS_NFTABLES
    public const ushort BatchBegin = 0x10;       // NFNL_MSG_BATCH_BEGIN (NLMSG_MIN_TYPE)
    public const ushort BatchEnd = 0x11;         // NFNL_MSG_BATCH_END
    public const byte Version0 = 0;              // NFNETLINK_V0

    /// <summary>nlmsg_type of an nf_tables message: subsystem in the high byte.</summary>
    public static ushort Type(byte message) => (ushort)((SubsysNftables << 8) | message);
}

internal static class NftMsg
{
    public const byte NewTable = 0;              // NFT_MSG_NEWTABLE
    public const byte GetTable = 1;              // NFT_MSG_GETTABLE
    public const byte DelTable = 2;              // NFT_MSG_DELTABLE
    public const byte NewChain = 3;              // NFT_MSG_NEWCHAIN
    public const byte GetChain = 4;              // NFT_MSG_GETCHAIN
    public const byte NewRule = 6;               // NFT_MSG_NEWRULE
    public const byte GetRule = 7;               // NFT_MSG_GETRULE
    public const byte DelRule = 8;               // NFT_MSG_DELRULE
    public const byte NewSet = 9;                // NFT_MSG_NEWSET
    public const byte GetSet = 10;               // NFT_MSG_GETSET
    public const byte NewSetElem = 12;           // NFT_MSG_NEWSETELEM
    public const byte GetSetElem = 13;           // NFT_MSG_GETSETELEM
    public const byte DelSetElem = 14;           // NFT_MSG_DELSETELEM
}

internal static class TableAttr
{
    public const ushort Name = 1;                // NFTA_TABLE_NAME
    public const ushort Flags = 2;               // NFTA_TABLE_FLAGS
    public const ushort Use = 3;                 // NFTA_TABLE_USE
    public const ushort Handle = 4;              // NFTA_TABLE_HANDLE
    public const ushort UserData = 6;            // NFTA_TABLE_USERDATA
}

internal static class ChainAttr
{
    public const ushort Table = 1;               // NFTA_CHAIN_TABLE
    public const ushort Name = 3;                // NFTA_CHAIN_NAME
    public const ushort Hook = 4;                // NFTA_CHAIN_HOOK
    public const ushort Policy = 5;              // NFTA_CHAIN_POLICY
    public const ushort Type = 7;                // NFTA_CHAIN_TYPE
}

internal static class HookAttr
{
    public const ushort HookNum = 1;             // NFTA_HOOK_HOOKNUM
    public const ushort Priority = 2;            // NFTA_HOOK_PRIORITY
}

internal static class RuleAttr
{
    public const ushort Table = 1;               // NFTA_RULE_TABLE
    public const ushort Chain = 2;               // NFTA_RULE_CHAIN
    public const ushort Handle = 3;              // NFTA_RULE_HANDLE
    public const ushort Expressions = 4;         // NFTA_RULE_EXPRESSIONS
    public const ushort UserData = 7;            // NFTA_RULE_USERDATA
}

internal static class ListAttr
{
    public const ushort Elem = 1;                // NFTA_LIST_ELEM
}

internal static class ExprAttr
{
    public const ushort Name = 1;                // NFTA_EXPR_NAME
    public const ushort Data = 2;                // NFTA_EXPR_DATA
}

internal static class DataAttr
{
    public const ushort Value = 1;               // NFTA_DATA_VALUE
    public const ushort Verdict = 2;             // NFTA_DATA_VERDICT
}

internal static class VerdictAttr
{
    public const ushort Code = 1;                // NFTA_VERDICT_CODE
}

internal static class SetAttr
{
    public const ushort Table = 1;               // NFTA_SET_TABLE
    public const ushort Name = 2;                // NFTA_SET_NAME
    public const ushort Flags = 3;               // NFTA_SET_FLAGS
    public const ushort KeyType = 4;             // NFTA_SET_KEY_TYPE
    public const ushort KeyLen = 5;              // NFTA_SET_KEY_LEN
    public const ushort Id = 10;                 // NFTA_SET_ID
}

internal static class SetElemListAttr
{
    public const ushort Table = 1;               // NFTA_SET_ELEM_LIST_TABLE
    public const ushort Set = 2;                 // NFTA_SET_ELEM_LIST_SET
    public const ushort Elements = 3;            // NFTA_SET_ELEM_LIST_ELEMENTS
}

internal static class SetElemAttr
{
    public const ushort Key = 1;                 // NFTA_SET_ELEM_KEY
    public const ushort UserData = 6;            // NFTA_SET_ELEM_USERDATA
}

internal static class ExprFields
{
    // meta
    public const ushort MetaDreg = 1;            // NFTA_META_DREG
    public const ushort MetaKey = 2;             // NFTA_META_KEY
    // payload
    public const ushort PayloadDreg = 1;         // NFTA_PAYLOAD_DREG
    public const ushort PayloadBase = 2;         // NFTA_PAYLOAD_BASE
    public const ushort PayloadOffset = 3;       // NFTA_PAYLOAD_OFFSET
    public const ushort PayloadLen = 4;          // NFTA_PAYLOAD_LEN
    // cmp
    public const ushort CmpSreg = 1;             // NFTA_CMP_SREG
    public const ushort CmpOp = 2;               // NFTA_CMP_OP
    public const ushort CmpData = 3;             // NFTA_CMP_DATA
    // bitwise
    public const ushort BitwiseSreg = 1;         // NFTA_BITWISE_SREG
    public const ushort BitwiseDreg = 2;         // NFTA_BITWISE_DREG
    public const ushort BitwiseLen = 3;          // NFTA_BITWISE_LEN
    public const ushort BitwiseMask = 4;         // NFTA_BITWISE_MASK
    public const ushort BitwiseXor = 5;          // NFTA_BITWISE_XOR
    // lookup
    public const ushort LookupSet = 1;           // NFTA_LOOKUP_SET
    public const ushort LookupSreg = 2;          // NFTA_LOOKUP_SREG
    public const ushort LookupSetId = 4;         // NFTA_LOOKUP_SET_ID
    public const ushort LookupFlags = 5;         // NFTA_LOOKUP_FLAGS
    // immediate
    public const ushort ImmediateDreg = 1;       // NFTA_IMMEDIATE_DREG
    public const ushort ImmediateData = 2;       // NFTA_IMMEDIATE_DATA
}

internal static class NftReg
{
    public const uint Verdict = 0;               // NFT_REG_VERDICT
    public const uint R1 = 1;                    // NFT_REG_1 (16 bytes: fits an IPv6 address)
}

/// <summary>Address families of nf_tables tables (NFPROTO_*).</summary>
public enum NftFamily : byte
{
    Inet = 1,                                    // NFPROTO_INET
    Ip = 2,                                      // NFPROTO_IPV4
    Ip6 = 10,                                    // NFPROTO_IPV6
}
