using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>
/// Reads YAML files (the deploy manifests) into JsonNode trees, typed as Kubernetes reads them (YAML 1.2 core
/// schema): a plain <c>true</c> is a bool and <c>9765</c> a number, but <c>"true"</c> stays a string, so a test can tell
/// `hostNetwork: true` from `hostNetwork: "true"` (which the API server rejects).
/// </summary>
public static partial class Yaml
{
    /// <summary>Every document of a multi-document file, in order (empty documents skipped).</summary>
    public static IReadOnlyList<JsonObject> LoadAll(string path)
    {
        var stream = new YamlStream();
        using (var reader = new StreamReader(path)) stream.Load(reader);
        return [.. stream.Documents.Select(d => ToJson(d.RootNode)).OfType<JsonObject>()];
    }

    private static JsonNode? ToJson(YamlNode node) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv =>
            KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value)))),
        YamlSequenceNode seq => new JsonArray([.. seq.Children.Select(ToJson)]),
        YamlScalarNode s => Scalar(s),
        _ => throw new InvalidDataException($"unsupported YAML node at {node.Start}"),
    };

    private static JsonNode? Scalar(YamlScalarNode s)
    {
        var v = s.Value ?? "";
        if (s.Style != ScalarStyle.Plain) return JsonValue.Create(v);
        if (v is "" or "~" or "null" or "Null" or "NULL") return null;
        if (v is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (v is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (IntegerPattern().IsMatch(v)) return JsonValue.Create(long.Parse(v, CultureInfo.InvariantCulture));
        return JsonValue.Create(v);
    }

    [GeneratedRegex("^[-+]?[0-9]+$")]
    private static partial Regex IntegerPattern();
}
