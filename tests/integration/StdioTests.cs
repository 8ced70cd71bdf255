using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The published binaries read stdin and write stdout through raw descriptors: what a runtime gets must be one JSON
/// document and its newline (so a log line on stderr never runs into it on a terminal), whatever the size of stdin.
/// </summary>
public sealed class StdioTests
{
    public static TheoryData<string> Plugins => new() { Binaries.PodBridgeName, Binaries.PodBridgeIpamName };

    private static string Binary(string name) => Binaries.Require(Binaries.PodBridgeDir, name);

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Version_prints_one_document_and_a_newline(string plugin)
    {
        var r = await PluginRunner.Run(Binary(plugin), new CniCall("VERSION") { Stdin = """{"cniVersion":"0.4.0"}""" });
        r.AssertSuccess();
        Assert.Equal("""
            {
              "cniVersion": "0.4.0",
              "supportedVersions": [
                "0.3.0",
                "0.3.1",
                "0.4.0",
                "1.0.0",
                "1.1.0"
              ]
            }

            """, r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task Error_document_ends_with_a_newline_and_stderr_is_separate(string plugin)
    {
        var r = await PluginRunner.Run(Binary(plugin), new CniCall("ADD")
        {
            ContainerId = "c1", NetNs = "/run/netns/does-not-matter", IfName = "eth0",
            Stdin = """{"cniVersion":"1.0.0","name":"n1","type":"x", """,
        });
        r.AssertError(6);
        Assert.EndsWith("}\n", r.Stdout);
        Assert.DoesNotContain(" error ", r.Stdout); // the log line went to stderr
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task A_large_stdin_is_read_to_its_end(string plugin)
    {
        // 200 KiB before the key VERSION reads: the read loop must grow its buffer and not stop at a pipe's 64 KiB.
        var conf = new JsonObject { ["padding"] = new string('x', 200 * 1024), ["cniVersion"] = "1.0.0" };
        var r = await PluginRunner.Run(Binary(plugin), new CniCall("VERSION") { Stdin = conf.ToJsonString() });
        r.AssertSuccess();
        Assert.Equal("1.0.0", (string?)r.Result["cniVersion"]);
    }
}
