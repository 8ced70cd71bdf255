using System.Runtime.InteropServices;

namespace PodBridge.Netlink.Wire;

// Fixed headers, host byte order, laid out exactly as the kernel's C structs.

[StructLayout(LayoutKind.Sequential)]
internal struct NlMsgHdr                     // struct nlmsghdr
{
    public const int Size = 16;
    public uint Length;                      // nlmsg_len
    public ushort Type;                      // nlmsg_type
    public ushort Flags;                     // nlmsg_flags
    public uint Seq;                         // nlmsg_seq
    public uint PortId;                      // nlmsg_pid
}

[StructLayout(LayoutKind.Sequential)]
internal struct IfInfoMsg                    // struct ifinfomsg
{
    public const int Size = 16;
    public byte Family;                      // ifi_family
    private byte _pad;                       // __ifi_pad
    public ushort Type;                      // ifi_type (ARPHRD_*)
    public int Index;                        // ifi_index
    public uint Flags;                       // ifi_flags (IFF_*)
    public uint Change;                      // ifi_change: which ifi_flags bits to apply
}

[StructLayout(LayoutKind.Sequential)]
internal struct IfAddrMsg                    // struct ifaddrmsg
{
    public const int Size = 8;
    public byte Family;                      // ifa_family
    public byte PrefixLength;                // ifa_prefixlen
    public byte Flags;                       // ifa_flags (IFA_F_*, low 8 bits)
    public byte Scope;                       // ifa_scope
    public int Index;                        // ifa_index
}

[StructLayout(LayoutKind.Sequential)]
internal struct RtMsg                        // struct rtmsg
{
    public const int Size = 12;
    public byte Family;                      // rtm_family
    public byte DstLength;                   // rtm_dst_len
    public byte SrcLength;                   // rtm_src_len
    public byte Tos;                         // rtm_tos
    public byte Table;                       // rtm_table
    public byte Protocol;                    // rtm_protocol (RTPROT_*)
    public byte Scope;                       // rtm_scope (RT_SCOPE_*)
    public byte Type;                        // rtm_type (RTN_*)
    public uint Flags;                       // rtm_flags
}

[StructLayout(LayoutKind.Sequential)]
internal struct SockAddrNl                   // struct sockaddr_nl
{
    public ushort Family;                    // nl_family
    private ushort _pad;                     // nl_pad
    public uint PortId;                      // nl_pid (0 = the kernel)
    public uint Groups;                      // nl_groups
}
