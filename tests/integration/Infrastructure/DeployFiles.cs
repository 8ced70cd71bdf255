using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>One volumeMount of the agent's container with the hostPath volume behind it.</summary>
public sealed record HostMount(string Name, string MountPath, string HostPath, string? Type, bool ReadOnly);

/// <summary>
/// deploy/: the manifest (podbridge.yaml), the kind cluster config and the image build script, read the way the
/// tests need them. The image test runs the agent's container with the manifest's own args, mounts and
/// capabilities, so the manifest, the image and the agent cannot drift apart unnoticed.
/// </summary>
public static partial class DeployFiles
{
    public static string Dir => Path.Combine(Binaries.RepoRoot, "deploy");
    public static string ManifestPath => Path.Combine(Dir, "podbridge.yaml");
    public static string KindPath => Path.Combine(Dir, "kind.yaml");
    public static string BuildScript => Path.Combine(Dir, "build-image.sh");

    public static IReadOnlyList<JsonObject> Manifest() => Yaml.LoadAll(ManifestPath);

    public static JsonObject Single(IReadOnlyList<JsonObject> docs, string kind) =>
        Assert.Single(docs, d => (string?)d["kind"] == kind);

    public static JsonObject DaemonSet(IReadOnlyList<JsonObject> docs) => Single(docs, "DaemonSet");

    public static JsonObject PodSpec(IReadOnlyList<JsonObject> docs) => DaemonSet(docs)["spec"]!["template"]!["spec"]!.AsObject();

    public static JsonObject AgentContainer(IReadOnlyList<JsonObject> docs) =>
        Assert.Single(PodSpec(docs)["containers"]!.AsArray())!.AsObject();

    public static IReadOnlyList<string> Args(JsonObject container) =>
        container["args"]?.AsArray().Select(a => (string)a!).ToList() ?? [];

    /// <summary>The value of --flag=value (or --flag value) in the container's args; null when absent.</summary>
    public static string? Flag(JsonObject container, string flag)
    {
        var args = Args(container);
        for (var i = 0; i < args.Count; i++)
        {
            if (args[i].StartsWith(flag + "=", StringComparison.Ordinal)) return args[i][(flag.Length + 1)..];
            if (args[i] == flag && i + 1 < args.Count) return args[i + 1];
        }
        return null;
    }

    public static IReadOnlyList<HostMount> HostMounts(IReadOnlyList<JsonObject> docs)
    {
        var volumes = PodSpec(docs)["volumes"]!.AsArray().ToDictionary(v => (string)v!["name"]!, v => v!.AsObject());
        return AgentContainer(docs)["volumeMounts"]!.AsArray().Select(m =>
        {
            var name = (string)m!["name"]!;
            Assert.True(volumes.TryGetValue(name, out var volume), $"volumeMount {name} names no volume");
            var hostPath = volume!["hostPath"] ?? throw new Xunit.Sdk.XunitException($"volume {name} is not a hostPath");
            return new HostMount(name, (string)m["mountPath"]!, (string)hostPath["path"]!, (string?)hostPath["type"],
                (bool?)m["readOnly"] ?? false);
        }).ToList();
    }

    /// <summary>The image build-image.sh tags by default (its TAG= line): the manifest must run that one.</summary>
    public static string DefaultImageTag()
    {
        var match = TagLine().Match(File.ReadAllText(BuildScript));
        Assert.True(match.Success, "build-image.sh has no TAG=... default");
        return match.Groups[1].Value;
    }

    [GeneratedRegex(@"^TAG=(\S+)$", RegexOptions.Multiline)]
    private static partial Regex TagLine();
}
