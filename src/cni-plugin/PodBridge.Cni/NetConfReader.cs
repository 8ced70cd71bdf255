using System.Text.Json;

namespace PodBridge.Cni;

/// <summary>
/// The spec's common keys of a network config, read with <see cref="ConfigReader"/> into <see cref="NetConf"/>.
/// A plugin reads its own keys from the same bytes (<see cref="NetConf.Json"/>) with its own key reader.
/// One method per object type: its keys, in declaration order; unknown keys fall through to Skip.
/// Element readers end in "!": a JSON null inside a list stays a null element, as the serializer kept it.
/// </summary>
internal static class NetConfReader
{
    public static NetConf Read(ReadOnlySpan<byte> utf8) => ConfigReader.Read(utf8, new NetConf(), NetConfKey);

    private static void NetConfKey(ref ConfigReader r, NetConf c)
    {
        if (r.Key("cniVersion"u8)) c.CniVersion = r.ReadString();
        else if (r.Key("cniVersions"u8)) c.CniVersions = r.ReadStringList();
        else if (r.Key("name"u8)) c.Name = r.ReadString();
        else if (r.Key("type"u8)) c.Type = r.ReadString();
        else if (r.Key("disableCheck"u8)) c.DisableCheck = r.ReadBool();
        else if (r.Key("ipam"u8)) c.Ipam = r.ReadObject(new IpamSection(), IpamKey);
        else if (r.Key("dns"u8)) c.Dns = r.ReadObject(new DnsConfig(), DnsKey);
        else if (r.Key("prevResult"u8)) c.PrevResult = r.ReadElement();
        else if (r.Key("runtimeConfig"u8)) c.RuntimeConfig = r.ReadObject(new RuntimeConfig(), RuntimeConfigKey);
        else if (r.Key("args"u8)) c.Args = r.ReadObject(new ArgsConfig(), ArgsKey);
        else if (r.Key("capabilities"u8)) c.Capabilities = r.ReadBoolMap();
        else if (r.Key("cni.dev/valid-attachments"u8)) c.ValidAttachments = r.ReadList(GcAttachment);
        else if (r.Key("cni.dev/attachments"u8)) c.Attachments = r.ReadList(GcAttachment);
        else if (r.Key("logFile"u8)) c.LogFile = r.ReadString();
        else if (r.Key("logLevel"u8)) c.LogLevel = r.ReadString();
        else if (r.Key("logFormat"u8)) c.LogFormat = r.ReadString();
        else if (r.Key("logMaxSize"u8)) c.LogMaxSize = r.ReadInt();
        else r.Skip();
    }

    // Only the type: the rest of the section is the IPAM plugin's schema.
    private static void IpamKey(ref ConfigReader r, IpamSection c)
    {
        c.KeyCount++;
        if (r.Key("type"u8)) c.Type = r.ReadString();
        else r.Skip();
    }

    private static void DnsKey(ref ConfigReader r, DnsConfig c)
    {
        if (r.Key("nameservers"u8)) c.Nameservers = r.ReadStringList();
        else if (r.Key("domain"u8)) c.Domain = r.ReadString();
        else if (r.Key("search"u8)) c.Search = r.ReadStringList();
        else if (r.Key("options"u8)) c.Options = r.ReadStringList();
        else r.Skip();
    }

    // ipRanges is the IPAM's (PodBridge.Ipam reads it with the rest of its schema).
    private static void RuntimeConfigKey(ref ConfigReader r, RuntimeConfig c)
    {
        if (r.Key("ips"u8)) c.Ips = r.ReadStringList();
        else if (r.Key("mac"u8)) c.Mac = r.ReadString();
        else r.Skip();
    }

    private static void ArgsKey(ref ConfigReader r, ArgsConfig c)
    {
        if (r.Key("cni"u8)) c.Cni = r.ReadObject(new CniArgsConfig(), CniArgsKey);
        else r.Skip();
    }

    private static void CniArgsKey(ref ConfigReader r, CniArgsConfig c)
    {
        if (r.Key("ips"u8)) c.Ips = r.ReadStringList();
        else if (r.Key("mac"u8)) c.Mac = r.ReadString();
        else r.Skip();
    }

    private static GcAttachment GcAttachment(ref ConfigReader r) => r.ReadObject(new GcAttachment(), GcAttachmentKey)!;

    private static void GcAttachmentKey(ref ConfigReader r, GcAttachment c)
    {
        if (r.Key("containerID"u8)) c.ContainerId = r.ReadString();
        else if (r.Key("ifname"u8)) c.IfName = r.ReadString();
        else r.Skip();
    }
}
