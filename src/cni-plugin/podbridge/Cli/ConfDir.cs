using System.Buffers;
using System.Text.Json;

namespace PodBridge.Plugin.Cli;

/// <summary>One network of this node: a podbridge entry of a conflist that ADD accepts.</summary>
internal sealed record PodNetwork(string File, int PluginIndex, PluginConfig Config)
{
    public string Name => Config.Conf.Name!;
    public string Bridge => Config.Bridge.BridgeName;
    public Ipam.IpamSettings? Ipam => Config.Ipam;
}

/// <summary>
/// The CNI config directory as runtimes read it (libcni ConfFiles): files ending in .conf, .conflist or .json,
/// in lexical order of their names; containerd uses only the first, CRI-O makes the first its default network.
/// The runtime injects the conflist's name and cniVersion into every plugin entry before calling it.
/// </summary>
internal static class ConfDir
{
    public const string Default = "/etc/cni/net.d";
    private static readonly string[] Extensions = [".conf", ".conflist", ".json"];

    public static List<string> Files(string dir) =>
        !Directory.Exists(dir) ? [] :
        Directory.GetFiles(dir)
            .Where(f => Extensions.Contains(Path.GetExtension(f)))
            .OrderBy(f => Path.GetFileName(f), StringComparer.Ordinal)
            .ToList();

    /// <summary>The plugin entries of a parsed file: plugins[] of a conflist, or the file itself for a single .conf.</summary>
    public static List<(int Index, string Path, JsonElement Plugin, byte[] Json)> Plugins(JsonElement root)
    {
        var list = new List<(int, string, JsonElement, byte[])>();
        if (root.ValueKind != JsonValueKind.Object) return list;
        if (!root.TryGetProperty("plugins", out var plugins))
        {
            list.Add((0, "", root, Serialize(root, null)));
            return list;
        }
        if (plugins.ValueKind != JsonValueKind.Array) return list;
        var i = 0;
        foreach (var p in plugins.EnumerateArray())
        {
            if (p.ValueKind == JsonValueKind.Object) list.Add((i, $"plugins[{i}]", p, Serialize(p, root)));
            i++;
        }
        return list;
    }

    /// <summary>The plugin's stdin as a runtime builds it: the conflist's name and cniVersion, then the entry's own keys.</summary>
    private static byte[] Serialize(JsonElement plugin, JsonElement? list)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (list is { } l)
            {
                foreach (var key in (ReadOnlySpan<string>)["cniVersion", "name"])
                    if (l.TryGetProperty(key, out var v)) { w.WritePropertyName(key); v.WriteTo(w); }
            }
            foreach (var prop in plugin.EnumerateObject())
            {
                if (list is not null && prop.Name is "cniVersion" or "name") continue;
                prop.WriteTo(w);
            }
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Every podbridge network of the directory that ADD accepts (invalid ones are validate's business).</summary>
    public static List<PodNetwork> Networks(string dir, string? dataDirOverride)
    {
        var networks = new List<PodNetwork>();
        foreach (var file in Files(dir))
        {
            JsonDocument doc;
            try { doc = JsonDocument.Parse(File.ReadAllBytes(file)); }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException) { continue; }
            using (doc)
            {
                foreach (var (index, _, plugin, json) in Plugins(doc.RootElement))
                {
                    if (!plugin.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String || t.GetString() != "podbridge") continue;
                    try
                    {
                        var config = ConfigAdapter.Load(json);
                        if (dataDirOverride is not null && config.Ipam is not null)
                            config = config with { Ipam = config.Ipam with { DataDir = dataDirOverride } };
                        if (networks.Any(n => n.Name == config.Conf.Name && n.Ipam?.DataDir == config.Ipam?.DataDir)) continue;
                        networks.Add(new PodNetwork(file, index, config));
                    }
                    catch (Cni.CniException) { }
                }
            }
        }
        return networks;
    }
}
