using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>Where the plugins under test live: our published binaries and the reference plugins.</summary>
public static class Binaries
{
    public const string ReferenceDir = "/usr/lib/cni";
    public const string PodBridgeName = "podbridge";
    public const string PodBridgeIpamName = "podbridge-ipam";

    /// <summary>The repository root: the first ancestor of the test assembly holding CniPlugin.sln.</summary>
    public static string RepoRoot { get; } = FindRepoRoot();

    /// <summary>$PODBRIDGE_BIN_DIR, else &lt;repo&gt;/artifacts/bin.</summary>
    public static string PodBridgeDir =>
        Environment.GetEnvironmentVariable("PODBRIDGE_BIN_DIR") is { Length: > 0 } dir
            ? Path.GetFullPath(dir)
            : Path.Combine(RepoRoot, "artifacts", "bin");

    public static string PodBridge => Require(PodBridgeDir, PodBridgeName);
    public static string PodBridgeIpam => Require(PodBridgeDir, PodBridgeIpamName);
    public static string ReferenceBridge => Require(ReferenceDir, "bridge");
    public static string ReferenceHostLocal => Require(ReferenceDir, "host-local");

    public static string Require(string dir, string name)
    {
        var path = Path.Combine(dir, name);
        if (File.Exists(path)) return path;
        var hint = dir == ReferenceDir
            ? "install the reference plugins: apt-get install containernetworking-plugins"
            : "publish it first: dotnet publish src/cni-plugin/podbridge -c Release -o artifacts/bin && " +
              "dotnet publish src/ipam/podbridge-ipam -c Release -o artifacts/bin (or run ./test.sh), " +
              "or point PODBRIDGE_BIN_DIR at a directory holding the binaries";
        throw new XunitException($"plugin binary {path} is missing; {hint}");
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "CniPlugin.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no CniPlugin.sln above {AppContext.BaseDirectory}");
    }
}

/// <summary>
/// One bridge + IPAM implementation under test. The shared scenarios run against each flavor, so the same
/// assertions are seen passing on the reference plugins before they judge podbridge.
/// </summary>
public sealed record PluginFlavor(
    string Label,
    Func<string> BridgeBinary,
    string BridgeType,
    string IpamType,
    Func<string> CniPath,
    string[] Versions,
    bool IsPodBridge)
{
    /// <summary>containernetworking/plugins' bridge + host-local (Debian 12 ships 1.1.1: results up to 1.0.0).</summary>
    public static PluginFlavor Reference { get; } = new(
        "reference", () => Binaries.ReferenceBridge, "bridge", "host-local", () => Binaries.ReferenceDir,
        ["0.3.0", "0.3.1", "0.4.0", "1.0.0"], IsPodBridge: false);

    /// <summary>podbridge with its embedded IPAM; CNI_PATH still points at artifacts/bin, as a runtime would set it.</summary>
    public static PluginFlavor PodBridge { get; } = new(
        "podbridge", () => Binaries.PodBridge, "podbridge", "podbridge-ipam", () => Binaries.PodBridgeDir,
        ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"], IsPodBridge: true);

    public bool Supports(string version) => Versions.Contains(version);

    public override string ToString() => Label;
}
