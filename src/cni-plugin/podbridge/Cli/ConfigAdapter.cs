using PodBridge.Cni;
using PodBridge.Ipam;

namespace PodBridge.Plugin.Cli;

/// <summary>One plugin entry of a conflist as ADD sees it, with the settings ADD would derive from it.</summary>
internal sealed record PluginConfig(NetConf Conf, BridgeConfig Bridge, IpamSettings? Ipam);

/// <summary>
/// The one place the operator commands reach into ADD's config layer: exactly the parse and validation calls ADD
/// makes, in ADD's order, so <c>podbridge validate</c> can never accept a config ADD refuses (or the reverse).
/// When the config model changes shape, only this adapter follows it.
/// </summary>
internal static class ConfigAdapter
{
    /// <summary>Throws the <see cref="CniException"/> ADD would answer with; else the settings ADD would use.</summary>
    public static PluginConfig Load(byte[] pluginJson)
    {
        var conf = NetConf.Parse(pluginJson);
        // BridgeConfig reads the request only for CNI_ARGS MAC=; an operator check has no request.
        var request = new CniRequest(CniVerb.Add, "validate", "", "eth0", CniArgs.Empty, [], pluginJson)
        {
            Environment = new Dictionary<string, string>(),
        };
        var bridge = BridgeConfig.From(conf, request);
        var ipam = bridge.IpamType == BridgeConfig.EmbeddedIpam ? IpamSettings.From(conf) : null;
        return new PluginConfig(conf, bridge, ipam);
    }
}
