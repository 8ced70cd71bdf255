using System.Buffers.Binary;
using PodBridge.Netlink.Wire;
using static PodBridge.Netlink.Wire.MessageFlags;

namespace PodBridge.Netlink;

// Bridge port options and VLANs: RTM_SETLINK to the AF_BRIDGE handler.
internal static partial class RtRequests
{
    /// <summary>
    /// IFLA_BRPORT_ISOLATED: an isolated port forwards only to non-isolated ports (the bridge itself, uplinks), never
    /// to another isolated one. Same nested IFLA_PROTINFO as hairpin mode.
    /// </summary>
    public static int SetIsolated(Span<byte> buffer, int index, bool on) => SetBridgePort(buffer, index, hairpin: null, isolated: on);

    /// <summary>
    /// IFLA_BR_VLAN_FILTERING on an existing bridge: RTM_NEWLINK without NLM_F_CREATE is the bridge's changelink.
    /// IFLA_INFO_KIND must be given and match, or the kernel rejects the IFLA_INFO_DATA.
    /// </summary>
    public static int SetVlanFiltering(Span<byte> buffer, int bridgeIndex, bool on)
    {
        var w = Begin(buffer, MessageType.NewLink, Change, new IfInfoMsg { Index = bridgeIndex });
        using (w.BeginNested(LinkAttr.LinkInfo))
        {
            w.WriteString(LinkInfoAttr.Kind, "bridge", nulTerminated: false);
            using (w.BeginNested(LinkInfoAttr.Data))
                w.WriteU8(BridgeAttr.VlanFiltering, on ? (byte)1 : (byte)0);
        }
        return w.Finish();
    }

    /// <summary>
    /// Adds (RTM_SETLINK) or removes (RTM_DELLINK) VLANs on a bridge port: AF_BRIDGE, IFLA_AF_SPEC holding
    /// IFLA_BRIDGE_FLAGS = BRIDGE_FLAGS_MASTER and one IFLA_BRIDGE_VLAN_INFO (struct bridge_vlan_info: u16 flags,
    /// u16 vid) per VLAN, a range as a RANGE_BEGIN / RANGE_END pair.
    /// </summary>
    public static int BridgeVlans(Span<byte> buffer, int portIndex, bool add, ReadOnlySpan<VlanRange> vlans)
    {
        var w = Begin(buffer, add ? MessageType.SetLink : MessageType.DelLink, Change,
            new IfInfoMsg { Family = Family.Bridge, Index = portIndex });
        using (w.BeginNested(LinkAttr.AfSpec))
        {
            Span<byte> u16 = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(u16, BridgeFlags.Master);
            w.WriteAttribute(BridgeAfSpecAttr.Flags, u16);
            foreach (var v in vlans)
            {
                var flags = (ushort)((v.Pvid ? BridgeVlanFlags.Pvid : 0) | (v.Untagged ? BridgeVlanFlags.Untagged : 0));
                if (v.First == v.Last)
                {
                    VlanInfo(ref w, flags, v.First);
                    continue;
                }
                VlanInfo(ref w, (ushort)(flags | BridgeVlanFlags.RangeBegin), v.First);
                VlanInfo(ref w, (ushort)(flags | BridgeVlanFlags.RangeEnd), v.Last);
            }
        }
        return w.Finish();

        static void VlanInfo(ref NetlinkWriter w, ushort flags, ushort vid)
        {
            Span<byte> info = stackalloc byte[4];
            BinaryPrimitives.WriteUInt16LittleEndian(info, flags);
            BinaryPrimitives.WriteUInt16LittleEndian(info[2..], vid);
            w.WriteAttribute(BridgeAfSpecAttr.VlanInfo, info);
        }
    }

    /// <summary>Dump of every bridge port with its VLANs (AF_BRIDGE, RTEXT_FILTER_BRVLAN: one entry per VLAN).</summary>
    public static int DumpBridgeVlans(Span<byte> buffer)
    {
        var w = Begin(buffer, MessageType.GetLink, (ushort)(Request | Dump), new IfInfoMsg { Family = Family.Bridge });
        w.WriteU32(LinkAttr.ExtMask, ExtFilter.BridgeVlan);
        return w.Finish();
    }
}
