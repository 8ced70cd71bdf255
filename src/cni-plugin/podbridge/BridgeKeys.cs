using System.Text.Json.Serialization;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// The bridge plugin's keys of a network config, as written (README "Configuration reference"), read from the stdin
/// bytes (<see cref="NetConf.Json"/>) with the protocol library's <see cref="ConfigReader"/>; a key of the wrong type
/// is code 7 naming it. <see cref="BridgeConfig"/> validates them and applies defaults.
/// The [JsonPropertyName] attributes name each key for a unit test that holds them and the reader in step.
/// </summary>
public sealed class BridgeKeys
{
    [JsonPropertyName("bridge")] public string? Bridge { get; set; }
    [JsonPropertyName("isGateway")] public bool IsGateway { get; set; }
    [JsonPropertyName("isDefaultGateway")] public bool IsDefaultGateway { get; set; }
    [JsonPropertyName("forceAddress")] public bool ForceAddress { get; set; }
    [JsonPropertyName("ipMasq")] public bool IpMasq { get; set; }
    [JsonPropertyName("ipMasqBackend")] public string? IpMasqBackend { get; set; }
    [JsonPropertyName("mtu")] public int? Mtu { get; set; }
    [JsonPropertyName("hairpinMode")] public bool HairpinMode { get; set; }
    [JsonPropertyName("promiscMode")] public bool PromiscMode { get; set; }
    [JsonPropertyName("vlan")] public int? Vlan { get; set; }
    [JsonPropertyName("vlanTrunk")] public List<VlanTrunkKey>? VlanTrunk { get; set; }
    [JsonPropertyName("preserveDefaultVlan")] public bool? PreserveDefaultVlan { get; set; }
    [JsonPropertyName("enabledad")] public bool EnableDad { get; set; }
    [JsonPropertyName("macspoofchk")] public bool MacSpoofChk { get; set; }
    [JsonPropertyName("disableContainerInterface")] public bool DisableContainerInterface { get; set; }
    [JsonPropertyName("portIsolation")] public bool PortIsolation { get; set; }

    public static BridgeKeys Read(NetConf conf) => ConfigReader.Read(conf.Json, new BridgeKeys(), Key);

    private static void Key(ref ConfigReader r, BridgeKeys c)
    {
        if (r.Key("bridge"u8)) c.Bridge = r.ReadString();
        else if (r.Key("isGateway"u8)) c.IsGateway = r.ReadBool();
        else if (r.Key("isDefaultGateway"u8)) c.IsDefaultGateway = r.ReadBool();
        else if (r.Key("forceAddress"u8)) c.ForceAddress = r.ReadBool();
        else if (r.Key("ipMasq"u8)) c.IpMasq = r.ReadBool();
        else if (r.Key("ipMasqBackend"u8)) c.IpMasqBackend = r.ReadString();
        else if (r.Key("mtu"u8)) c.Mtu = r.ReadInt();
        else if (r.Key("hairpinMode"u8)) c.HairpinMode = r.ReadBool();
        else if (r.Key("promiscMode"u8)) c.PromiscMode = r.ReadBool();
        else if (r.Key("vlan"u8)) c.Vlan = r.ReadInt();
        else if (r.Key("vlanTrunk"u8)) c.VlanTrunk = r.ReadList(Trunk);
        else if (r.Key("preserveDefaultVlan"u8)) c.PreserveDefaultVlan = r.ReadBool();
        else if (r.Key("enabledad"u8)) c.EnableDad = r.ReadBool();
        else if (r.Key("macspoofchk"u8)) c.MacSpoofChk = r.ReadBool();
        else if (r.Key("disableContainerInterface"u8)) c.DisableContainerInterface = r.ReadBool();
        else if (r.Key("portIsolation"u8)) c.PortIsolation = r.ReadBool();
        else r.Skip();
    }

    private static VlanTrunkKey Trunk(ref ConfigReader r) => r.ReadObject(new VlanTrunkKey(), TrunkKey)!;

    private static void TrunkKey(ref ConfigReader r, VlanTrunkKey c)
    {
        if (r.Key("id"u8)) c.Id = r.ReadInt();
        else if (r.Key("minID"u8)) c.MinId = r.ReadInt();
        else if (r.Key("maxID"u8)) c.MaxId = r.ReadInt();
        else r.Skip();
    }
}

/// <summary>One vlanTrunk entry: {"id": N} or {"minID": A, "maxID": B} (both forms may share an entry).</summary>
public sealed class VlanTrunkKey
{
    [JsonPropertyName("id")] public int? Id { get; set; }
    [JsonPropertyName("minID")] public int? MinId { get; set; }
    [JsonPropertyName("maxID")] public int? MaxId { get; set; }
}
