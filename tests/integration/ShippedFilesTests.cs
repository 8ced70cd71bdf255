using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>The example configs in conf/ and install.sh work as shipped.</summary>
public sealed class ShippedFilesTests
{
    public static TheoryData<string> ConfFiles => new(
        Directory.GetFiles(Path.Combine(Binaries.RepoRoot, "conf"), "*.conflist").Select(Path.GetFileName).OfType<string>());

    /// <summary>
    /// Each conflist, with only its names, subnets and dataDir swapped for test-private ones, serves ADD/CHECK/DEL
    /// through podbridge. Runs in a private node netns: the dual-stack example turns on IPv6 forwarding.
    /// </summary>
    [Theory]
    [MemberData(nameof(ConfFiles))]
    public async Task ConfExample_AddCheckDel(string file)
    {
        var conflist = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Binaries.RepoRoot, "conf", file)))!.AsObject();
        Assert.Equal("1.0.0", (string?)conflist["cniVersion"]);
        Assert.StartsWith("podbridge", (string?)conflist["name"]);
        var plugin = Assert.Single(conflist["plugins"]!.AsArray())!.AsObject();
        Assert.Equal("podbridge", (string?)plugin["type"]);

        using var net = await TestNetwork.Create(isolatedNode: true);
        using var pod = await TestPod.Create();
        var conf = (JsonObject)plugin.DeepClone();
        conf["cniVersion"] = conflist["cniVersion"]!.DeepClone();
        conf["name"] = net.Name;
        conf["bridge"] = net.Bridge;
        var ipam = conf["ipam"]!.AsObject();
        ipam["dataDir"] = net.DataDir;
        var dualStack = false;
        foreach (var set in ipam["ranges"]!.AsArray())
            foreach (var range in set!.AsArray())
            {
                var v6 = ((string)range!["subnet"]!).Contains(':');
                dualStack |= v6;
                range.AsObject().Remove("rangeStart");
                range.AsObject().Remove("rangeEnd");
                range["subnet"] = v6 ? net.Subnet6 : net.Subnet4;
            }

        // CNI_PATH as a node would have it: our binaries and the reference plugins (host-local example).
        var cni = new CniDriver(PluginFlavor.PodBridge with { CniPath = () => $"{Binaries.PodBridgeDir}:{Binaries.ReferenceDir}" }, net);
        var result = (await cni.Add(pod, conf)).AssertSuccess().Result;
        await Expect.ResultMatchesKernel(result, "1.0.0", net, pod, PluginFlavor.PodBridge, dualStack: dualStack,
            isGateway: (bool?)conf["isGateway"] ?? false, defaultRoute: (bool?)conf["isDefaultGateway"] ?? false);
        (await cni.Check(pod, conf, result)).AssertSilentSuccess();
        (await cni.Del(pod, conf, result)).AssertSilentSuccess();
    }

    [Fact]
    public async Task InstallScript_InstallsKeepsConfigUnlessForced_AndItsDemoCleansUp()
    {
        // install.sh --no-build takes the binaries from <repo>/artifacts/bin, whatever PODBRIDGE_BIN_DIR says.
        var artifacts = Path.Combine(Binaries.RepoRoot, "artifacts", "bin");
        Binaries.Require(artifacts, Binaries.PodBridgeName);
        Binaries.Require(artifacts, Binaries.PodBridgeIpamName);
        var dir = RunScope.NewTempDir("install");
        try
        {
            var prefix = Path.Combine(dir, "bin");
            var confDir = Path.Combine(dir, "net.d");
            string[] Args(params string[] extra) =>
                [Path.Combine(Binaries.RepoRoot, "install.sh"), "--prefix", prefix, "--conf-dir", confDir, "--no-build", "--no-apt", "--no-modules", .. extra];
            var env = new Dictionary<string, string?> { ["PODBRIDGE_BIN_DIR"] = null };

            var first = await Sh.Run("bash", Args("--demo"), env: env, timeout: TimeSpan.FromSeconds(120));
            first.EnsureOk();
            Assert.Contains("demo ok", first.Stdout);
            Assert.Contains("0% packet loss", first.Stdout);
            foreach (var b in new[] { "podbridge", "podbridge-ipam" })
                Assert.True(File.GetUnixFileMode(Path.Combine(prefix, b)).HasFlag(UnixFileMode.UserExecute), $"{b} not installed executable");
            var installed = Path.Combine(confDir, "10-podbridge.conflist");
            var shipped = await File.ReadAllTextAsync(Path.Combine(Binaries.RepoRoot, "conf", "10-podbridge.conflist"));
            Assert.Equal(shipped, await File.ReadAllTextAsync(installed));

            // The demo removed everything it made.
            Assert.DoesNotContain("pbdemo", (await Sh.Run("ip", "netns", "list")).Stdout);
            Assert.DoesNotContain("pbdemo", (await Sh.Run("ip", "-br", "link")).Stdout);

            await File.WriteAllTextAsync(installed, "{\"edited\": true}");
            (await Sh.Run("bash", Args(), env: env)).EnsureOk();
            Assert.Equal("{\"edited\": true}", await File.ReadAllTextAsync(installed));
            (await Sh.Run("bash", Args("--force"), env: env)).EnsureOk();
            Assert.Equal(shipped, await File.ReadAllTextAsync(installed));
        }
        finally
        {
            RunScope.TryDeleteDirectory(dir);
        }
    }
}
