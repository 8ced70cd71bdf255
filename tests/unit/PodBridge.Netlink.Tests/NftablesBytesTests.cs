using System.Net;
using System.Net.Sockets;
using PodBridge.Netlink.Nftables;
using PodBridge.Netlink.Wire;

namespace PodBridge.Netlink.Tests;

/// <summary>
/// Exact bytes of nf_tables batches. The rule and chain bodies are the bytes nft 1.0.6 sends for the same
/// statement (strace -xx of `nft add rule ...`); ours differ only in nlmsg_flags, where we add NLM_F_ACK so the
/// commit learns each operation's outcome.
/// </summary>
public class NftablesBytesTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static byte[] Encode(NftBatch batch, uint firstSeq = 0)
    {
        var buffer = new byte[batch.MaxSize];
        Array.Fill(buffer, (byte)0xAA);
        return buffer[..batch.Encode(buffer, firstSeq)];
    }

    private static readonly string Begin0 = "14000000 1000 0100 00000000 00000000 00 00 000a"; // BATCH_BEGIN, seq 0, res_id htons(NFNL_SUBSYS_NFTABLES)

    private static string End(int seq) => $"14000000 1100 0100 {seq:x2}000000 00000000 00 00 000a";

    [Fact]
    public void Rule_matching_an_ipv4_destination_prefix_with_return_is_the_bytes_nft_sends()
    {
        var batch = new NftBatch(NftFamily.Inet).AddRule("t", "c",
            [.. NftMatch.Family(AddressFamily.InterNetwork), .. NftMatch.Address(source: false, IPNetwork.Parse("10.244.0.0/24")),
             new NftVerdict(NftVerdictCode.Return)]);
        var expected = Hex(Begin0 +
            "08010000 060a 050c 01000000 00000000" +   // nlmsg_len 264, NFT_MSG_NEWRULE, REQUEST|ACK|CREATE|APPEND, seq 1
            "01 00 0000" +                             // nfgenmsg: NFPROTO_INET
            "0600 0100 74000000" +                     // NFTA_RULE_TABLE "t"
            "0600 0200 63000000" +                     // NFTA_RULE_CHAIN "c"
            "e400 0480" +                              // NFTA_RULE_EXPRESSIONS, nested, 228
            // meta load nfproto => reg 1; cmp eq reg 1 0x02 (ipv4)
            "24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 0f 08 00 01 00 00 00 00 01" +
            "2c 00 01 80 08 00 01 00 63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 00 0c 00 03 80" +
            "05 00 01 00 02 00 00 00" +
            // payload load 3b @ network header + 16 => reg 1; cmp eq reg 1 0x0af400
            "34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80 08 00 01 00 00 00 00 01" +
            "08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 10 08 00 04 00 00 00 00 03 2c 00 01 80 08 00 01 00 63 6d 70 00" +
            "20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 00 0c 00 03 80 07 00 01 00 0a f4 00 00" +
            // immediate reg 0 (verdict) NFT_RETURN (-5)
            "30 00 01 80 0e 00 01 00 69 6d 6d 65 64 69 61 74 65 00 00 00 1c 00 02 80 08 00 01 00 00 00 00 00 10 00 02 80" +
            "0c 00 02 80 08 00 01 00 ff ff ff fb" +
            End(2));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch)));
    }

    [Fact]
    public void Rule_masquerading_an_ipv6_source_prefix_not_on_a_byte_boundary_masks_it_as_nft_does()
    {
        var batch = new NftBatch(NftFamily.Inet).AddRule("t", "c",
            [.. NftMatch.Family(AddressFamily.InterNetworkV6), .. NftMatch.Address(source: true, IPNetwork.Parse("fd00:10:244::/63")),
             new NftCounter(), new NftMasquerade()]);
        var expected = Hex(Begin0 +
            "68010000 060a 050c 01000000 00000000" +   // nlmsg_len 360
            "01 00 0000" +
            "0600 0100 74000000" +
            "0600 0200 63000000" +
            "4401 0480" +                              // NFTA_RULE_EXPRESSIONS, nested, 324
            // meta nfproto; cmp eq 0x0a (ipv6)
            "24 00 01 80 09 00 01 00 6d 65 74 61 00 00 00 00 14 00 02 80 08 00 02 00 00 00 00 0f 08 00 01 00 00 00 00 01" +
            "2c 00 01 80 08 00 01 00 63 6d 70 00 20 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 00 0c 00 03 80" +
            "05 00 01 00 0a 00 00 00" +
            // payload load 16b @ network header + 8; bitwise reg 1 = (reg 1 & ffff:ffff:ffff:fffe::) ^ 0
            "34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80 08 00 01 00 00 00 00 01" +
            "08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 08 08 00 04 00 00 00 00 10 5c 00 01 80 0c 00 01 00 62 69 74 77" +
            "69 73 65 00 4c 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 10 18 00 04 80" +
            "14 00 01 00 ff ff ff ff ff ff ff fe 00 00 00 00 00 00 00 00 18 00 05 80 14 00 01 00 00 00 00 00 00 00 00 00" +
            "00 00 00 00 00 00 00 00" +
            // cmp eq reg 1 fd00:10:244::
            "38 00 01 80 08 00 01 00 63 6d 70 00 2c 00 02 80 08 00 01 00 00 00 00 01 08 00 02 00" +
            "00 00 00 00 18 00 03 80 14 00 01 00 fd 00 00 10 02 44 00 00 00 00 00 00 00 00 00 00" +
            // counter; masq (both with an empty NFTA_EXPR_DATA)
            "14 00 01 80 0c 00 01 00 63 6f 75 6e 74 65 72 00 04 00 02 80 14 00 01 80 09 00 01 00 6d 61 73 71 00 00 00 00 04 00 02 80" +
            End(2));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch)));
    }

    [Fact]
    public void Base_chain_carries_type_policy_and_hook_as_nft_sends_them()
    {
        var batch = new NftBatch(NftFamily.Inet).AddChain("t", "d", new NftHook("nat", NftHookNum.PostRouting, 100));
        var expected = Hex(Begin0 +
            "48000000 030a 0504 01000000 00000000" +   // nlmsg_len 72, NFT_MSG_NEWCHAIN, REQUEST|ACK|CREATE
            "01 00 0000" +
            "0600 0100 74000000" +                     // NFTA_CHAIN_TABLE "t"
            "0600 0300 64000000" +                     // NFTA_CHAIN_NAME "d"
            "0800 0700 6e617400" +                     // NFTA_CHAIN_TYPE "nat"
            "0800 0500 00000001" +                     // NFTA_CHAIN_POLICY NF_ACCEPT (be32)
            "1400 0480" +                              // NFTA_CHAIN_HOOK, nested
            "0800 0100 00000004" +                     //   NFTA_HOOK_HOOKNUM NF_INET_POST_ROUTING
            "0800 0200 00000064" +                     //   NFTA_HOOK_PRIORITY 100 (srcnat)
            End(2));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch)));
    }

    [Fact]
    public void Table_replacement_is_add_delete_add_in_one_batch_with_consecutive_sequence_numbers()
    {
        var batch = new NftBatch(NftFamily.Inet).AddTable("t").DeleteTable("t").AddTable("t", [0x76, 0x31]);
        var expected = Hex(
            "14000000 1000 0100 07000000 00000000 00 00 000a" +                      // BATCH_BEGIN seq 7
            "1c000000 000a 0504 08000000 00000000 01 00 0000 0600 0100 74000000" +   // NEWTABLE "t", seq 8
            "1c000000 020a 0500 09000000 00000000 01 00 0000 0600 0100 74000000" +   // DELTABLE "t", REQUEST|ACK, seq 9
            "24000000 000a 0504 0a000000 00000000 01 00 0000 0600 0100 74000000" +   // NEWTABLE "t", seq 10
            "0600 0600 76310000" +                                                   //   NFTA_TABLE_USERDATA "v1" + 2 pad
            "14000000 1100 0100 0b000000 00000000 00 00 000a");                      // BATCH_END seq 11
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch, firstSeq: 7)));
    }

    [Fact]
    public void Set_elements_and_a_lookup_refer_to_a_set_of_the_same_batch_by_id()
    {
        var batch = new NftBatch(NftFamily.Inet);
        var id = batch.AddSet("t", "s", AddressFamily.InterNetwork);
        batch.AddElements("t", "s", [IPAddress.Parse("10.0.0.2")], id);
        batch.AddRule("t", "c", NftMatch.AddressInSet(AddressFamily.InterNetwork, source: true, "s", negate: true, setId: id));
        var expected = Hex(Begin0 +
            "44000000 090a 0504 01000000 00000000 01 00 0000" +  // NEWSET
            "0600 0100 74000000" +                               //   NFTA_SET_TABLE "t"
            "0600 0200 73000000" +                               //   NFTA_SET_NAME "s"
            "0800 0300 00000000" +                               //   NFTA_SET_FLAGS 0 (hash)
            "0800 0400 00000007" +                               //   NFTA_SET_KEY_TYPE ipv4_addr
            "0800 0500 00000004" +                               //   NFTA_SET_KEY_LEN 4
            "0800 0a00 00000001" +                               //   NFTA_SET_ID 1
            "40000000 0c0a 0504 02000000 00000000 01 00 0000" +  // NEWSETELEM
            "0600 0100 74000000" +                               //   NFTA_SET_ELEM_LIST_TABLE "t"
            "0600 0200 73000000" +                               //   NFTA_SET_ELEM_LIST_SET "s"
            "1400 0380 1000 0180 0c00 0180 0800 0100 0a000002" + //   ELEMENTS { ELEM { KEY { VALUE 10.0.0.2 } } }
            "0800 0400 00000001" +                               //   NFTA_SET_ELEM_LIST_SET_ID 1
            "90000000 060a 050c 03000000 00000000 01 00 0000" +  // NEWRULE
            "0600 0100 74000000 0600 0200 63000000" +
            "6c00 0480" +
            "34 00 01 80 0c 00 01 00 70 61 79 6c 6f 61 64 00 24 00 02 80 08 00 01 00 00 00 00 01" + // payload 4b @ nh + 12
            "08 00 02 00 00 00 00 01 08 00 03 00 00 00 00 0c 08 00 04 00 00 00 00 04" +
            "3400 0180 0b00 0100 6c6f6f6b 757000 00" +           // "lookup"
            "2400 0280 0600 0100 73000000 0800 0200 00000001" +  //   NFTA_LOOKUP_SET "s", SREG 1
            "0800 0400 00000001 0800 0500 00000001" +            //   SET_ID 1, FLAGS NFT_LOOKUP_F_INV
            End(4));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch)));
    }

    [Fact]
    public void Flushing_a_chain_is_a_rule_delete_naming_only_the_chain()
    {
        var expected = Hex(Begin0 +
            "24000000 080a 0500 01000000 00000000 01 00 0000" +  // NFT_MSG_DELRULE, REQUEST|ACK
            "0600 0100 74000000 0600 0200 63000000" +            // NFTA_RULE_TABLE "t", NFTA_RULE_CHAIN "c"
            End(2));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(new NftBatch(NftFamily.Inet).FlushChain("t", "c"))));
    }

    [Fact]
    public void A_table_reply_is_read_back_with_its_userdata()
    {
        // NFT_MSG_NEWTABLE as the kernel answers GETTABLE: name, flags, use, handle, userdata.
        var reply = Hex(
            "40000000 000a 0000 05000000 00000000 01 00 0001" +
            "0800 0100 74626c00" +             // NFTA_TABLE_NAME "tbl"
            "0800 0200 00000000" +             // NFTA_TABLE_FLAGS
            "0800 0300 00000002" +             // NFTA_TABLE_USE 2
            "0c00 0400 00000000 0000002a" +    // NFTA_TABLE_HANDLE 42
            "0700 0600 763a3100");             // NFTA_TABLE_USERDATA "v:1"
        var reader = new NetlinkReader(reply);
        Assert.True(reader.TryRead(out var message));
        var table = NfTablesSocket.ParseTable(in message);
        Assert.NotNull(table);
        Assert.Equal(NftFamily.Inet, table.Family);
        Assert.Equal("tbl", table.Name);
        Assert.Equal(2u, table.Use);
        Assert.Equal(42ul, table.Handle);
        Assert.Equal("v:1"u8.ToArray(), table.UserData);
    }

    [Fact]
    public void A_rule_reply_is_read_back_with_its_expression_names()
    {
        var reply = Hex(
            "50000000 060a 0000 05000000 00000000 01 00 0001" +
            "0600 0100 74000000" +             // NFTA_RULE_TABLE "t"
            "0600 0200 63000000" +             // NFTA_RULE_CHAIN "c"
            "0c00 0300 00000000 00000007" +    // NFTA_RULE_HANDLE 7
            "2000 0480" +                      // NFTA_RULE_EXPRESSIONS
            "0c00 0180 0800 0100 636d7000" +   //   { NAME "cmp" }
            "1000 0180 0900 0100 6d617371 00000000"); //   { NAME "masq" }
        var reader = new NetlinkReader(reply);
        Assert.True(reader.TryRead(out var message));
        var rule = NfTablesSocket.ParseRule(in message);
        Assert.NotNull(rule);
        Assert.Equal(("t", "c", 7ul), (rule.Table, rule.Chain, rule.Handle));
        Assert.Equal(["cmp", "masq"], rule.Expressions);
    }

    /// <summary>
    /// `nft add element inet t s { 10.0.0.1 comment "ab/eth0" }` as nft 1.0.6 sends it (strace -xx, private netns):
    /// the element body is byte for byte nft's. Ours differs in nlmsg_flags (NLM_F_ACK added) and in leaving out
    /// NFTA_SET_ELEM_LIST_SET_ID, which nft also sends for a set that already exists (the kernel finds it by name).
    /// </summary>
    [Fact]
    public void Element_comment_is_the_userdata_tlv_nft_sends()
    {
        var batch = new NftBatch(NftFamily.Inet).AddElements("t", "s", [(IPAddress.Parse("10.0.0.1"), (string?)"ab/eth0")]);
        var expected = Hex(Begin0 +
            "48000000 0c0a 0504 01000000 00000000 01 00 0000" +  // NEWSETELEM, REQUEST|ACK|CREATE (nft: REQUEST|CREATE)
            "0600 0100 74000000" +                               //   NFTA_SET_ELEM_LIST_TABLE "t"
            "0600 0200 73000000" +                               //   NFTA_SET_ELEM_LIST_SET "s"
            // from here nft's bytes: ELEMENTS { ELEM { KEY { VALUE 10.0.0.1 }, USERDATA { COMMENT(0) len 8 "ab/eth0\0" } } }
            "24 00 03 80 20 00 01 80 0c 00 01 80 08 00 01 00 0a 00 00 01 0e 00 06 00 00 08 61 62 2f 65 74 68 30 00 00 00" +
            End(2));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch)));
    }

    [Fact]
    public void Deleting_elements_carries_no_comment()
    {
        var batch = new NftBatch(NftFamily.Inet).DeleteElements("t", "s", [IPAddress.Parse("10.0.0.1")]);
        var expected = Hex(Begin0 +
            "38000000 0e0a 0500 01000000 00000000 01 00 0000" +  // DELSETELEM, REQUEST|ACK
            "0600 0100 74000000 0600 0200 73000000" +
            "1400 0380 1000 0180 0c00 0180 0800 0100 0a000001" +
            End(2));
        Assert.Equal(Convert.ToHexStringLower(expected), Convert.ToHexStringLower(Encode(batch)));
    }

    [Fact]
    public void A_set_element_reply_is_read_back_with_its_comment()
    {
        // The kernel's answer to `nft list set inet t s` (strace -xx of nft 1.0.6's recvmsg), seq and port zeroed.
        var reply = Hex(
            "48000000 0c0a 0200 00000000 00000000 01 00 0004" +
            "0600 0100 74000000 0600 0200 73000000" +
            "24 00 03 00 20 00 01 00 0c 00 01 00 08 00 01 00 0a 00 00 01 0e 00 06 00 00 08 61 62 2f 65 74 68 30 00 00 00");
        var reader = new NetlinkReader(reply);
        Assert.True(reader.TryRead(out var message));
        var elements = NfTablesSocket.ParseSetElements(in message);
        Assert.Equal([new NftSetElement(IPAddress.Parse("10.0.0.1"), "ab/eth0")], elements);
    }

    [Fact]
    public void Comments_over_127_bytes_are_refused_as_nft_refuses_them()
    {
        Assert.Throws<ArgumentException>(() => new NftBatch(NftFamily.Inet).AddElements("t", "s", [(IPAddress.Loopback, (string?)new string('x', 128))]));
        Assert.Equal("x", NfTablesSocket.CommentOf([0, 2, (byte)'x', 0]));
        Assert.Null(NfTablesSocket.CommentOf([1, 2, (byte)'x', 0]));
    }
}
