using System.Net;
using System.Text;
using System.Text.Json;

namespace PodBridge.Node;

/// <summary>
/// The network config the agent writes for its node: podbridge with one range set per pod CIDR (so a
/// dual-stack node gets an IPv4 and an IPv6 address per pod), then portmap for hostPort. No ipMasq: the agent
/// masquerades itself, with the whole cluster's pod CIDRs as exceptions, which a per-node plugin cannot know.
/// </summary>
public static class Conflist
{
    /// <summary>"00-" sorts before every other conflist, so the runtime picks ours.</summary>
    public const string FileName = "00-podbridge.conflist";
    public const string NetworkName = "podbridge";
    public const string BridgeName = "cni0";

    public static byte[] Render(IReadOnlyList<IPNetwork> podCidrs, string dataDir)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("cniVersion", "1.0.0");
            w.WriteString("name", NetworkName);
            w.WriteStartArray("plugins");

            w.WriteStartObject();
            w.WriteString("type", "podbridge");
            w.WriteString("bridge", BridgeName);
            w.WriteBoolean("isGateway", true);
            w.WriteBoolean("isDefaultGateway", true);
            w.WriteBoolean("hairpinMode", true);
            w.WriteStartObject("ipam");
            w.WriteString("type", "podbridge-ipam");
            w.WriteStartArray("ranges");
            // The API's order: podCIDRs lists the cluster's primary family first, and the first range set gives the
            // pod its primary IP.
            foreach (var cidr in podCidrs)
            {
                w.WriteStartArray();
                w.WriteStartObject();
                w.WriteString("subnet", cidr.ToString());
                w.WriteEndObject();
                w.WriteEndArray();
            }
            w.WriteEndArray();
            w.WriteString("dataDir", dataDir);
            w.WriteEndObject();
            w.WriteEndObject();

            w.WriteStartObject();
            w.WriteString("type", "portmap");
            w.WriteStartObject("capabilities");
            w.WriteBoolean("portMappings", true);
            w.WriteEndObject();
            w.WriteEndObject();

            w.WriteEndArray();
            w.WriteEndObject();
        }
        buffer.Write("\n"u8);
        return buffer.ToArray();
    }
}
