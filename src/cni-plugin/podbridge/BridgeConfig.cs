using System.Text.Json;
using PodBridge.Cni;
using PodBridge.Netlink;

namespace PodBridge.Plugin;

/// <summary>
/// Everything the bridge plugin's verbs need from the network config, validated, with defaults applied: the bridge
/// keys (<see cref="BridgeKeys"/>) and the common keys the verbs use (network name, DNS, prevResult). The verbs read
/// only this; <see cref="Conf"/> is kept solely to hand the config to the IPAM plugin.
/// </summary>
public sealed record BridgeConfig(
    string Network,
    string BridgeName,
    bool IsGateway,
    bool IsDefaultGateway,
    bool ForceAddress,
    bool IpMasq,
    string? IpMasqBackend,
    int? Mtu,
    bool HairpinMode,
    bool PromiscMode,
    bool EnableDad,
    bool PortIsolation,
    bool DisableContainerInterface,
    bool MacSpoofChk,
    int Vlan,
    IReadOnlyList<ushort> TrunkVlans,
    bool PreserveDefaultVlan,
    byte[]? Mac,
    string? IpamType,
    CniDns Dns,
    JsonElement? PrevResult,
    IReadOnlyList<GcAttachment> ValidAttachments,
    NetConf Conf)
{
    public const string DefaultBridge = "cni0";
    public const string EmbeddedIpam = "podbridge-ipam";

    /// <summary>ADD, CHECK and STATUS: every key validated; a bad or unsupported value is a CNI error naming it.</summary>
    public static BridgeConfig From(NetConf conf, CniRequest request)
    {
        var keys = BridgeKeys.Read(conf);
        var bridge = string.IsNullOrEmpty(keys.Bridge) ? DefaultBridge : keys.Bridge;
        try { CniEnvironment.ValidateIfName(bridge); }
        catch (CniException e)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig,
                $"bridge: '{bridge}' is not a valid interface name ({e.Message[(e.Message.IndexOf(':') + 1)..].Trim()})");
        }

        if (keys.Mtu is int mtu && (mtu < 68 || mtu > 65535))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"mtu: {mtu} is outside 68..65535");
        if (keys.HairpinMode && keys.PromiscMode)
            throw new CniException(CniErrorCode.InvalidNetworkConfig,
                "hairpinMode and promiscMode cannot both be true (hairpin needs the bridge to filter its own frames)");
        if (keys.Vlan is int vlan && (vlan < 0 || vlan > 4094))
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"vlan: {vlan} is outside 0..4094");
        var trunk = TrunkVlansOf(keys.VlanTrunk);
        // The VLAN gateway interface is named "<bridge>.<vlan>" like the reference's, and must fit IFNAMSIZ.
        if ((keys.IsGateway || keys.IsDefaultGateway) && keys.Vlan is > 0 and var v && $"{bridge}.{v}".Length > 15)
            throw new CniException(CniErrorCode.InvalidNetworkConfig,
                $"bridge: '{bridge}' is too long for the VLAN gateway interface '{bridge}.{v}' (15 bytes at most)");
        if (keys.IpMasqBackend is { Length: > 0 } backend && backend is not ("nftables" or "iptables"))
            throw new CniException(CniErrorCode.InvalidNetworkConfig,
                $"ipMasqBackend: '{backend}' is not a masquerade backend (nftables or iptables; leave it out for auto)");

        var ipamType = string.IsNullOrEmpty(conf.Ipam?.Type) ? null : conf.Ipam.Type;
        // An empty section is L2 like no section (the reference's test is ipam.type != ""); keys without a type are a mistake.
        if (conf.Ipam is { KeyCount: > 0 } && ipamType is null)
            throw new CniException(CniErrorCode.InvalidNetworkConfig, "ipam.type is required when an ipam section is given");

        // MAC priority (CONVENTIONS.md): runtimeConfig.mac > args.cni.mac > CNI_ARGS MAC=.
        (string Field, string? Value) mac = conf.RuntimeConfig?.Mac is { Length: > 0 } rm ? ("runtimeConfig.mac", rm)
            : conf.Args?.Cni?.Mac is { Length: > 0 } am ? ("args.cni.mac", am)
            : ("CNI_ARGS MAC", request.Args.Mac);
        byte[]? macBytes = null;
        if (!string.IsNullOrEmpty(mac.Value))
        {
            try { macBytes = Netlink.Mac.Parse(mac.Value); }
            catch (FormatException)
            {
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{mac.Field}: '{mac.Value}' is not a MAC address");
            }
            if ((macBytes[0] & 1) != 0)
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{mac.Field}: '{mac.Value}' is a multicast MAC address");
        }

        return Build(conf, keys, bridge, macBytes, ipamType, trunk);
    }

    /// <summary>vlanTrunk as the reference reads it: ids 1..4094, ranges need both ends; sorted, without duplicates.</summary>
    private static List<ushort> TrunkVlansOf(List<VlanTrunkKey>? trunk)
    {
        var vids = new SortedSet<ushort>();
        if (trunk is null) return [];
        for (var i = 0; i < trunk.Count; i++)
        {
            var path = $"vlanTrunk[{i}]";
            var t = trunk[i] ?? throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{path}: null");
            if (t.MinId is null != t.MaxId is null)
                throw new CniException(CniErrorCode.InvalidNetworkConfig,
                    $"{path}: minID and maxID must be given together ({(t.MinId is null ? "minID" : "maxID")} is missing)");
            if (t.MinId is int min && t.MaxId is int max)
            {
                Check(min, "minID");
                Check(max, "maxID");
                if (max < min) throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{path}: minID {min} is greater than maxID {max}");
                for (var id = min; id <= max; id++) vids.Add((ushort)id);
            }
            if (t.Id is int one)
            {
                Check(one, "id");
                vids.Add((ushort)one);
            }
            if (t.Id is null && t.MinId is null)
                throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{path}: needs id, or minID and maxID");

            void Check(int id, string field)
            {
                if (id is < 1 or > 4094)
                    throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{path}.{field}: {id} is outside 1..4094");
            }
        }
        return [.. vids];
    }

    /// <summary>
    /// DEL and GC must clean up even for a config ADD would refuse (the runtime sends DEL after every failed ADD,
    /// with the same config): only what teardown needs is read, nothing is validated. An unusable bridge name
    /// becomes "" (no host-side lookup); a missing ipam.type means there is no IPAM to release from.
    /// </summary>
    public static BridgeConfig ForTeardown(NetConf conf)
    {
        var keys = BridgeKeys.Read(conf);
        var bridge = string.IsNullOrEmpty(keys.Bridge) ? DefaultBridge : keys.Bridge;
        try { CniEnvironment.ValidateIfName(bridge); }
        catch (CniException) { bridge = ""; }
        var ipamType = string.IsNullOrEmpty(conf.Ipam?.Type) ? null : conf.Ipam.Type;
        return Build(conf, keys, bridge, null, ipamType, []);
    }

    private static BridgeConfig Build(NetConf conf, BridgeKeys keys, string bridge, byte[]? mac, string? ipamType, List<ushort> trunk) =>
        new(conf.Name!, bridge, keys.IsGateway || keys.IsDefaultGateway, keys.IsDefaultGateway, keys.ForceAddress, keys.IpMasq,
            string.IsNullOrEmpty(keys.IpMasqBackend) ? null : keys.IpMasqBackend,
            keys.Mtu, keys.HairpinMode, keys.PromiscMode, keys.EnableDad, keys.PortIsolation, keys.DisableContainerInterface, keys.MacSpoofChk,
            keys.Vlan is > 0 and <= 4094 ? keys.Vlan.Value : 0, trunk, keys.PreserveDefaultVlan ?? true, mac, ipamType, DnsOf(conf.Dns), conf.PrevResult, conf.GcValidAttachments, conf);

    private static CniDns DnsOf(DnsConfig? d) => d is null ? new CniDns()
        : new CniDns { Nameservers = d.Nameservers ?? [], Domain = d.Domain, Search = d.Search ?? [], Options = d.Options ?? [] };

    /// <summary>vlan or vlanTrunk: the bridge filters VLANs and the port gets its VLANs.</summary>
    public bool UsesVlans => Vlan != 0 || TrunkVlans.Count > 0;

    /// <summary>The masquerade backend: ipMasqBackend, or auto (decided on this node when asked).</summary>
    internal Masquerade.Backend MasqBackend => Masquerade.Resolve(IpMasqBackend);

    internal Masquerade.Attachment MasqAttachment(CniRequest request) => new(Network, request.ContainerId, request.IfName);

    public ICniPlugin? CreateIpam() => IpamType switch
    {
        null => null,
        EmbeddedIpam => new Ipam.PodBridgeIpam(),
        var other => new DelegatedPlugin(other),
    };

    private static CniException Unsupported(string field, string what) =>
        new(CniErrorCode.UnsupportedField, $"{field}: {what}");
}
