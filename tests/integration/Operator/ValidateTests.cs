using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Operator;

/// <summary>
/// `podbridge validate` on a corpus of broken conflists: each must be reported at the right JSON path, line and
/// column; a good one passes; and whenever validate quotes ADD's verdict, ADD really answers with that code.
/// </summary>
public sealed class ValidateTests
{
    private const string Ok = """
        {
          "cniVersion": "1.0.0",
          "name": "corpus",
          "plugins": [
            {
              "type": "podbridge",
              "bridge": "pbcorpus0",
              "ipam": {
                "type": "podbridge-ipam",
                "dataDir": "DATADIR",
                "ranges": [
                  [{ "subnet": "10.251.0.0/24", "rangeStart": "10.251.0.10", "rangeEnd": "10.251.0.50" }],
                  [{ "subnet": "fd51::/64" }]
                ]
              }
            }
          ]
        }
        """;

    /// <summary>(name, replace this text of <see cref="Ok"/>, with this, expected "line:column: path: message" start).</summary>
    public static TheoryData<string, string, string, string> Corpus => new()
    {
        { "syntax: trailing comma", "\"type\": \"podbridge\",", "\"type\": \"podbridge\",,", "6:27: invalid JSON: ',' is an invalid start of a property name" },
        { "syntax: truncated", "    }\n  ]\n}", "    }\n  ]", "17:4: invalid JSON: Expected depth to be zero" },
        { "address not IPv4", "\"rangeEnd\": \"10.251.0.50\"", "\"rangeEnd\": \"10.251.0.300\"", "12:82: plugins[0].ipam.ranges[0][0].rangeEnd: 10.251.0.300 is not an IPv4 address" },
        { "rangeStart after rangeEnd", "\"rangeStart\": \"10.251.0.10\"", "\"rangeStart\": \"10.251.0.60\"", "12:55: plugins[0].ipam.ranges[0][0].rangeStart: 10.251.0.60 is after rangeEnd 10.251.0.50\n" },
        { "gateway outside subnet", "\"subnet\": \"fd51::/64\"", "\"subnet\": \"fd51::/64\", \"gateway\": \"fd52::1\"", "13:48: plugins[0].ipam.ranges[1][0].gateway: fd52::1 is outside the subnet fd51::/64" },
        { "overlapping sets", "\"subnet\": \"fd51::/64\"", "\"subnet\": \"10.251.0.0/25\"", "13:12: plugins[0].ipam.ranges[1][0]: 10.251.0.1-10.251.0.126 overlaps plugins[0].ipam.ranges[0][0]" },
        { "bridge name too long", "\"pbcorpus0\"", "\"pbcorpus0-much-too-long\"", "7:17: plugins[0].bridge: 'pbcorpus0-much-too-long' is 23 bytes" },
        { "missing chain plugin", "    }\n  ]\n}", "    },\n    { \"type\": \"no-such-plugin\" }\n  ]\n}", "17:15: plugins[1].type: 'no-such-plugin' is not in the CNI bin dir" },
        { "dataDir not writable", "\"DATADIR\"", "\"/proc/podbridge\"", "10:20: plugins[0].ipam.dataDir: /proc/podbridge is not writable" },
        { "wrong type (ADD's check)", "\"bridge\": \"pbcorpus0\",", "\"bridge\": \"pbcorpus0\", \"mtu\": \"1500\",", "7:37: plugins[0].mtu: has the wrong type: expected a 32-bit integer, found a string (ADD fails with CNI error 7)" },
        { "mtu out of range (ADD's check)", "\"bridge\": \"pbcorpus0\",", "\"bridge\": \"pbcorpus0\", \"mtu\": 20,", "7:37: plugins[0].mtu: 20 is outside 68..65535 (ADD fails with CNI error 7)" },
        { "unsupported cniVersion", "\"1.0.0\"", "\"0.9.9\"", "2:17: cniVersion: 0.9.9 is not supported" },
        { "no ranges (ADD's check)", "\"ranges\": [", "\"rangez\": [", "8:15: plugins[0].ipam.ranges: no address ranges configured" },
        { "bad logFormat", "\"bridge\": \"pbcorpus0\",", "\"bridge\": \"pbcorpus0\", \"logFormat\": \"xml\",", "7:43: plugins[0].logFormat: \"xml\" is not \"text\" or \"json\"" },
    };

    private static async Task<(ShResult Result, string File, string Dir)> Validate(string content, params string[] extra)
    {
        var dir = RunScope.NewTempDir("validate");
        var file = Path.Combine(dir, "10-corpus.conflist");
        await File.WriteAllTextAsync(file, content.Replace("DATADIR", Path.Combine(dir, "data")));
        var r = await Sh.Run(Binaries.PodBridge, ["validate", file, "--bin-dir", Binaries.PodBridgeDir, .. extra]);
        return (r, file, dir);
    }

    [Fact]
    public async Task A_good_conflist_validates()
    {
        var (r, file, dir) = await Validate(Ok);
        try
        {
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Equal($"{file}: ok", r.Stdout.Trim());
        }
        finally { RunScope.TryDeleteDirectory(dir); }
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public async Task A_broken_conflist_is_reported_at_its_path_line_and_column(string name, string find, string replace, string expected)
    {
        Assert.Contains(find, Ok);
        var (r, file, dir) = await Validate(Ok.Replace(find, replace));
        try
        {
            Assert.True(r.ExitCode == 1, $"{name}: {r}");
            Assert.True(r.Stdout.Contains($"{file}:{expected}", StringComparison.Ordinal), $"{name}: expected {expected}, got:\n{r.Stdout}");

            var (j, _, jdir) = await Validate(Ok.Replace(find, replace), "--json");
            RunScope.TryDeleteDirectory(jdir);
            var json = JsonNode.Parse(j.Stdout)!;
            Assert.False((bool)json["valid"]!);
            var first = json["findings"]![0]!;
            Assert.Equal(expected.Split(':')[0], ((int)first["line"]!).ToString());
        }
        finally { RunScope.TryDeleteDirectory(dir); }
    }

    /// <summary>validate quotes ADD's code only when ADD really gives it: run ADD with the same plugin config.</summary>
    [Theory]
    [InlineData("\"bridge\": \"pbcorpus0\",", "\"bridge\": \"pbcorpus0\", \"mtu\": 20,", 7)]
    [InlineData("\"ranges\": [", "\"rangez\": [", 7)]
    public async Task Validate_and_ADD_agree(string find, string replace, int code)
    {
        var content = Ok.Replace(find, replace);
        var (r, _, dir) = await Validate(content);
        try
        {
            Assert.Contains($"(ADD fails with CNI error {code})", r.Stdout);
            var list = JsonNode.Parse(content.Replace("DATADIR", Path.Combine(dir, "data")))!;
            var plugin = list["plugins"]![0]!.DeepClone().AsObject();
            plugin["cniVersion"] = "1.0.0";
            plugin["name"] = "corpus";
            using var pod = await TestPod.Create();
            // In a private node namespace: a failing ADD must not create the bridge, and if it did, only there.
            using var node = await TestNetNs.Create();
            var add = await PluginRunner.Run(Binaries.PodBridge, new CniCall("ADD")
            {
                ContainerId = pod.ContainerId, NetNs = pod.NetNs.Path, IfName = "eth0", Stdin = plugin.ToJsonString(),
                NodeNetNs = node.Name,
            });
            add.AssertError(code);
            // Nothing of the failed ADD is left, the bridge included (the IPAM fails before a new bridge is created).
            Assert.False(await Kernel.LinkExists(node.Name, "pbcorpus0"), "the failed ADD left bridge pbcorpus0 behind");
        }
        finally { RunScope.TryDeleteDirectory(dir); }
    }

    [Fact]
    public async Task A_directory_reports_the_conflists_runtimes_never_read()
    {
        var dir = RunScope.NewTempDir("validate-dir");
        try
        {
            var good = Ok.Replace("DATADIR", Path.Combine(dir, "data"));
            await File.WriteAllTextAsync(Path.Combine(dir, "10-first.conflist"), good);
            await File.WriteAllTextAsync(Path.Combine(dir, "20-second.conflist"), good);
            await File.WriteAllTextAsync(Path.Combine(dir, "notes.txt"), "not a config");
            var r = await Sh.Run(Binaries.PodBridge, ["validate", dir, "--bin-dir", Binaries.PodBridgeDir]);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"{dir}/20-second.conflist:1:1: warning: never read by containerd, and not CRI-O's default network: 10-first.conflist sorts first", r.Stdout);
            Assert.Contains($"{dir}/10-first.conflist: ok", r.Stdout);
            Assert.DoesNotContain("notes.txt", r.Stdout);
        }
        finally { RunScope.TryDeleteDirectory(dir); }
    }

    [Fact]
    public async Task A_pool_overlapping_an_address_of_the_node_is_reported()
    {
        using var node = await TestNetNs.Create();
        var dir = RunScope.NewTempDir("validate-node");
        try
        {
            var dummy = RunScope.NewName();
            // This kernel has no dummy links: one end of a veth pair carries the address.
            (await node.Exec("ip", "link", "add", dummy, "type", "veth", "peer", "name", RunScope.NewName())).EnsureOk();
            (await node.Exec("ip", "addr", "add", "10.251.0.20/24", "dev", dummy)).EnsureOk();
            var file = Path.Combine(dir, "10-corpus.conflist");
            await File.WriteAllTextAsync(file, Ok.Replace("DATADIR", Path.Combine(dir, "data")));
            var r = await node.Exec(Binaries.PodBridge, "validate", file, "--bin-dir", Binaries.PodBridgeDir);
            Assert.Equal(1, r.ExitCode);
            Assert.Contains($"plugins[0].ipam.ranges[0][0]: the pool 10.251.0.10-10.251.0.50 contains 10.251.0.20, an address of {dummy} on this node", r.Stdout);
        }
        finally { RunScope.TryDeleteDirectory(dir); }
    }

    [Fact]
    public async Task Help_version_and_unknown_commands()
    {
        var version = await Sh.Run(Binaries.PodBridge, "--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Matches(@"^podbridge \d+\.\d+\.\d+(\S*)? \(commit [0-9a-f]{40}\)\n$", version.Stdout);
        var help = await Sh.Run(Binaries.PodBridge, "--help");
        Assert.Equal(0, help.ExitCode);
        foreach (var c in new[] { "validate", "doctor", "leases", "gc", "explain", "metrics" })
            Assert.Contains($"\n  {c} ", help.Stdout);
        var unknown = await Sh.Run(Binaries.PodBridge, "frobnicate");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("unknown command 'frobnicate'", unknown.Stderr);
        Assert.Contains("usage: podbridge COMMAND", unknown.Stderr);
        Assert.Equal("", unknown.Stdout);
        // With CNI_COMMAND set the arguments are ignored: a runtime gets the CNI plugin.
        var cni = await Sh.Run(Binaries.PodBridge, ["frobnicate"], env: new Dictionary<string, string?> { ["CNI_COMMAND"] = "VERSION" });
        Assert.Equal(0, cni.ExitCode);
        Assert.Contains("supportedVersions", cni.Stdout);
    }
}
