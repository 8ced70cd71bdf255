using System.Net;
using System.Text;
using System.Text.Json;
using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

/// <summary>A plugin that records what the host asked of it and does what the test tells it to.</summary>
internal sealed class FakePlugin : ICniPlugin
{
    public List<(CniVerb Verb, CniRequest Request, NetConf Config)> Calls { get; } = [];
    public Exception? Throw { get; init; }
    public CniResult Result { get; init; } = new();

    private void Record(CniVerb verb, CniRequest request, NetConf config)
    {
        Calls.Add((verb, request, config));
        if (Throw is not null) throw Throw;
    }

    public CniResult Add(CniRequest request, NetConf config) { Record(CniVerb.Add, request, config); return Result; }
    public void Del(CniRequest request, NetConf config) => Record(CniVerb.Del, request, config);
    public void Check(CniRequest request, NetConf config) => Record(CniVerb.Check, request, config);
    public void Gc(CniRequest request, NetConf config) => Record(CniVerb.Gc, request, config);
    public void Status(CniRequest request, NetConf config) => Record(CniVerb.Status, request, config);
}

/// <summary>Tests that swap Console.Out/Error or drive the static Log run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideState
{
    public const string Name = "process-wide state (Console, Log)";
}

[Collection(ProcessWideState.Name)]
public class CniHostTests
{
    private const string Attachment = "CNI_CONTAINERID=c0ffee|CNI_NETNS=/run/netns/pod1|CNI_IFNAME=eth0|CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web|CNI_PATH=/opt/cni/bin";

    private static string Config(string version) => $$"""{"cniVersion":"{{version}}","name":"net1","type":"podbridge","bridge":"cni0"}""";

    private sealed record Outcome(int Exit, string Stdout, string ConsoleOut);

    /// <summary>Runs the host; asserts the protocol invariants every run must keep.</summary>
    private static Outcome Run(ICniPlugin plugin, string command, string env, string stdin)
    {
        var vars = Pairs($"CNI_COMMAND={command}" + (env.Length > 0 ? "|" + env : ""));
        var stdout = new MemoryStream();
        var io = new CniHost.Io(Env(vars), () => Utf8(stdin), stdout);

        var consoleOut = new StringWriter();
        var savedOut = Console.Out;
        var savedErr = Console.Error;
        Console.SetOut(consoleOut);
        Console.SetError(new StringWriter());
        int exit;
        try { exit = CniHost.Run("podbridge", plugin, io); }
        finally
        {
            Console.SetOut(savedOut);
            Console.SetError(savedErr);
        }

        var text = Encoding.UTF8.GetString(stdout.ToArray());
        // stdout is either empty or exactly one JSON document (JsonDocument rejects trailing data) and its newline,
        // so that on a terminal a log line on stderr starts on a line of its own.
        if (text.Length > 0)
        {
            Assert.EndsWith("}\n", text);
            text = text[..^1];
            JsonDocument.Parse(text).Dispose();
        }
        Assert.Equal(exit == 0 ? 0 : 1, exit);
        return new Outcome(exit, text, consoleOut.ToString());
    }

    private static JsonElement Error(Outcome o, int code)
    {
        Assert.Equal(1, o.Exit);
        var e = JsonDocument.Parse(o.Stdout).RootElement;
        Assert.Equal(code, e.GetProperty("code").GetInt32());
        var keys = e.EnumerateObject().Select(p => p.Name).ToArray();
        Assert.True(keys.SequenceEqual(["cniVersion", "code", "msg"]) || keys.SequenceEqual(["cniVersion", "code", "msg", "details"]),
            string.Join(",", keys));
        return e;
    }

    private static CniResult SampleResult() => new()
    {
        Interfaces = [new CniInterface { Name = "eth0", Mac = "0A:58:0A:01:00:05", Mtu = 1500, Sandbox = "/run/netns/pod1" }],
        Ips = [new CniIpConfig { Address = IpCidr.Parse("10.1.0.5/16", "t"), Gateway = IPAddress.Parse("10.1.0.1"), Interface = 0 }],
    };

    [Fact]
    public void Add_prints_the_result_in_the_configs_version()
    {
        var plugin = new FakePlugin { Result = SampleResult() };
        var o = Run(plugin, "ADD", Attachment, Config("1.0.0"));
        Assert.Equal(0, o.Exit);
        Assert.Equal("""
            {
              "cniVersion": "1.0.0",
              "interfaces": [
                {
                  "name": "eth0",
                  "mac": "0a:58:0a:01:00:05",
                  "sandbox": "/run/netns/pod1"
                }
              ],
              "ips": [
                {
                  "interface": 0,
                  "address": "10.1.0.5/16",
                  "gateway": "10.1.0.1"
                }
              ]
            }
            """, o.Stdout);
        Assert.Equal("", o.ConsoleOut);

        var (verb, request, config) = Assert.Single(plugin.Calls);
        Assert.Equal(CniVerb.Add, verb);
        Assert.Equal("c0ffee", request.ContainerId);
        Assert.Equal("/run/netns/pod1", request.NetNs);
        Assert.Equal("eth0", request.IfName);
        Assert.Equal("web", request.Args.PodName);
        Assert.Equal("net1", config.Name);
        Assert.Contains("\"bridge\"", System.Text.Encoding.UTF8.GetString(config.Json)); // the plugin reads its keys from the bytes
    }

    [Fact]
    public void Add_with_a_031_config_prints_a_031_result()
    {
        var o = Run(new FakePlugin { Result = SampleResult() }, "ADD", Attachment, Config("0.3.1"));
        Assert.Equal("""
            {
              "cniVersion": "0.3.1",
              "interfaces": [
                {
                  "name": "eth0",
                  "mac": "0a:58:0a:01:00:05",
                  "sandbox": "/run/netns/pod1"
                }
              ],
              "ips": [
                {
                  "version": "4",
                  "interface": 0,
                  "address": "10.1.0.5/16",
                  "gateway": "10.1.0.1"
                }
              ],
              "dns": {}
            }
            """, o.Stdout);
    }

    [Theory]
    [InlineData("DEL", "0.3.0")]
    [InlineData("DEL", "1.1.0")]
    [InlineData("CHECK", "0.4.0")]
    [InlineData("CHECK", "1.0.0")]
    [InlineData("GC", "1.1.0")]
    [InlineData("STATUS", "1.1.0")]
    public void Successful_verbs_other_than_add_print_nothing(string command, string version)
    {
        var plugin = new FakePlugin();
        var o = Run(plugin, command, Attachment, Config(version));
        Assert.Equal(0, o.Exit);
        Assert.Equal("", o.Stdout);
        Assert.Equal("", o.ConsoleOut);
        var call = Assert.Single(plugin.Calls);
        Assert.Equal(command, call.Verb.ToString().ToUpperInvariant());
        Assert.Equal(version, call.Config.Version);
    }

    [Fact]
    public void Del_runs_without_netns()
    {
        var plugin = new FakePlugin();
        var o = Run(plugin, "DEL", "CNI_CONTAINERID=c0ffee|CNI_NETNS=|CNI_IFNAME=eth0|CNI_ARGS=|CNI_PATH=", Config("1.0.0"));
        Assert.Equal(0, o.Exit);
        Assert.False(Assert.Single(plugin.Calls).Request.HasNetNs);
    }

    [Theory]
    [InlineData("CHECK", "0.3.0", "CHECK needs cniVersion 0.4.0 or later; the config has 0.3.0")]
    [InlineData("CHECK", "0.3.1", "CHECK needs cniVersion 0.4.0 or later; the config has 0.3.1")]
    [InlineData("GC", "1.0.0", "GC needs cniVersion 1.1.0 or later; the config has 1.0.0")]
    [InlineData("GC", "0.4.0", "GC needs cniVersion 1.1.0 or later; the config has 0.4.0")]
    [InlineData("STATUS", "1.0.0", "STATUS needs cniVersion 1.1.0 or later; the config has 1.0.0")]
    public void Verbs_newer_than_the_config_are_code_1(string command, string version, string msg)
    {
        var plugin = new FakePlugin();
        var o = Run(plugin, command, Attachment, Config(version));
        var e = Error(o, 1);
        Assert.Equal(msg, e.GetProperty("msg").GetString());
        Assert.Equal(version, e.GetProperty("cniVersion").GetString());
        Assert.Empty(plugin.Calls);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.0.0"}""", "1.0.0")]
    [InlineData("""{"cniVersion":"0.4.0","name":"ignored"}""", "0.4.0")]
    [InlineData("", "1.1.0")]
    [InlineData("not json", "1.1.0")]
    [InlineData("""{"cniVersion":""}""", "1.1.0")]
    public void Version_prints_the_supported_versions(string stdin, string echoed)
    {
        var plugin = new FakePlugin();
        var o = Run(plugin, "VERSION", "CNI_CONTAINERID=|CNI_NETNS=dummy|CNI_IFNAME=dummy|CNI_ARGS=|CNI_PATH=dummy", stdin);
        Assert.Equal(0, o.Exit);
        Assert.Equal($$"""
            {
              "cniVersion": "{{echoed}}",
              "supportedVersions": [
                "0.3.0",
                "0.3.1",
                "0.4.0",
                "1.0.0",
                "1.1.0"
              ]
            }
            """, o.Stdout);
        Assert.Empty(plugin.Calls);
    }

    [Fact]
    public void Version_ignores_invalid_environment()
    {
        var o = Run(new FakePlugin(), "VERSION", "CNI_CONTAINERID=-x|CNI_IFNAME=..|CNI_ARGS=junk", """{"cniVersion":"0.3.1"}""");
        Assert.Equal(0, o.Exit);
        Assert.Equal("0.3.1", JsonDocument.Parse(o.Stdout).RootElement.GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Plugin_CniException_becomes_the_error_object()
    {
        var plugin = new FakePlugin { Throw = new CniException(CniErrorCode.AddressUnavailable, "IP 10.1.0.7 is taken by 'c2/eth0'", "range 10.1.0.0/16 <set 0>") };
        var o = Run(plugin, "ADD", Attachment, Config("0.4.0"));
        Assert.Equal(1, o.Exit);
        Assert.Equal("""
            {
              "cniVersion": "0.4.0",
              "code": 103,
              "msg": "IP 10.1.0.7 is taken by 'c2/eth0'",
              "details": "range 10.1.0.0/16 <set 0>"
            }
            """, o.Stdout);
        Assert.Equal("", o.ConsoleOut);
    }

    [Theory]
    [InlineData("DEL")]
    [InlineData("CHECK")]
    [InlineData("GC")]
    [InlineData("STATUS")]
    public void Every_verb_reports_plugin_errors(string command)
    {
        var plugin = new FakePlugin { Throw = new CniException(CniErrorCode.PluginNotAvailable, "pool 10.1.0.0/16 is exhausted") };
        var o = Run(plugin, command, Attachment, Config("1.1.0"));
        Assert.Equal("""
            {
              "cniVersion": "1.1.0",
              "code": 50,
              "msg": "pool 10.1.0.0/16 is exhausted"
            }
            """, o.Stdout);
    }

    [Fact]
    public void Unexpected_exception_is_999_with_the_message_and_no_stack_trace()
    {
        var plugin = new FakePlugin { Throw = ThrownFromDeepInside() };
        var o = Run(plugin, "ADD", Attachment, Config("1.1.0"));
        Assert.Equal("""
            {
              "cniVersion": "1.1.0",
              "code": 999,
              "msg": "internal error: sequence contains no lease",
              "details": "InvalidOperationException"
            }
            """, o.Stdout);
        Assert.DoesNotContain(" at ", o.Stdout);
        Assert.DoesNotContain(nameof(ThrownFromDeepInside), o.Stdout);
        Assert.Equal("", o.ConsoleOut);
    }

    private static Exception ThrownFromDeepInside()
    {
        try { throw new InvalidOperationException("sequence contains no lease"); }
        catch (InvalidOperationException e) { Assert.NotNull(e.StackTrace); return e; }
    }

    [Theory]
    // Before stdin is parsed the error takes the version the config claims, else the latest.
    [InlineData("", "CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0", """{"cniVersion":"0.4.0","name":"n"}""", 4, "1.1.0")]
    [InlineData("ADD", "CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x", """{"cniVersion":"0.4.0","name":"n"}""", 4, "0.4.0")]
    [InlineData("ADD", "CNI_CONTAINERID=c 1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0", """{"cniVersion":"1.0.0","name":"n"}""", 4, "1.0.0")]
    [InlineData("ADD", "CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0|CNI_ARGS=FOO=1", """{"cniVersion":"0.3.1","name":"n"}""", 4, "0.3.1")]
    [InlineData("BOGUS", "", """{"cniVersion":"1.0.0","name":"n"}""", 4, "1.1.0")]
    [InlineData("ADD", Attachment, """{"cniVersion":"1.0.0","name":"n" """, 6, "1.0.0")]
    [InlineData("ADD", Attachment, "", 6, "1.1.0")]
    [InlineData("DEL", Attachment, "{not json}", 6, "1.1.0")]
    [InlineData("ADD", Attachment, """{"cniVersion":"0.4.0","name":"n","dns":{"domain":5}}""", 7, "0.4.0")]
    [InlineData("ADD", Attachment, """{"name":"n"}""", 7, "1.1.0")]
    [InlineData("ADD", Attachment, """{"cniVersion":"1.0.0"}""", 7, "1.0.0")]
    [InlineData("ADD", Attachment, """{"cniVersion":"1.0.0","name":"bad name"}""", 7, "1.0.0")]
    [InlineData("ADD", Attachment, """{"cniVersion":"0.2.0","name":"n"}""", 1, "0.2.0")]
    public void Protocol_errors(string command, string env, string stdin, int code, string errorVersion)
    {
        var plugin = new FakePlugin();
        var o = Run(plugin, command, env, stdin);
        var e = Error(o, code);
        Assert.Equal(errorVersion, e.GetProperty("cniVersion").GetString());
        Assert.False(string.IsNullOrEmpty(e.GetProperty("msg").GetString()));
        Assert.Empty(plugin.Calls);
    }

    [Fact]
    public void Missing_variable_error_names_it()
    {
        var o = Run(new FakePlugin(), "CHECK", "CNI_CONTAINERID=c1|CNI_IFNAME=eth0", Config("1.0.0"));
        Assert.Equal("""
            {
              "cniVersion": "1.0.0",
              "code": 4,
              "msg": "CNI_NETNS is required for CHECK but is not set"
            }
            """, o.Stdout);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("HELP")]
    public void Without_a_config_verb_stdin_is_never_read(string? command)
    {
        // A person running the binary by hand must get an error, not a process waiting on the terminal.
        var stdout = new MemoryStream();
        var reads = 0;
        var io = new CniHost.Io(name => name == "CNI_COMMAND" ? command : null, () => { reads++; return []; }, stdout);
        Assert.Equal(1, CniHost.Run("podbridge", new FakePlugin(), io));
        Assert.Equal(0, reads);
        using var doc = JsonDocument.Parse(stdout.ToArray());
        Assert.Equal(4, doc.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("1.1.0", doc.RootElement.GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Env_error_with_unreadable_stdin_still_prints_one_error()
    {
        var stdout = new MemoryStream();
        var reads = 0;
        var io = new CniHost.Io(Env(("CNI_COMMAND", "ADD")), () => { reads++; throw new IOException("EBADF"); }, stdout);
        Assert.Equal(1, CniHost.Run("podbridge", new FakePlugin(), io));
        Assert.Equal(1, reads);
        using var doc = JsonDocument.Parse(stdout.ToArray());
        Assert.Equal(4, doc.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("1.1.0", doc.RootElement.GetProperty("cniVersion").GetString());
    }

    [Fact]
    public void Unreadable_stdin_is_code_5()
    {
        var stdout = new MemoryStream();
        var io = new CniHost.Io(Env(("CNI_COMMAND", "STATUS")), () => throw new IOException("Bad file descriptor"), stdout);
        Assert.Equal(1, CniHost.Run("podbridge", new FakePlugin(), io));
        using var doc = JsonDocument.Parse(stdout.ToArray());
        Assert.Equal(5, doc.RootElement.GetProperty("code").GetInt32());
    }

    [Fact]
    public void Error_writer_and_version_writer_shapes()
    {
        var ms = new MemoryStream();
        CniHost.WriteError(ms, "1.1.0", 7, "Invalid Configuration", "Network 192.168.0.0/31 too small to allocate from.");
        Assert.Equal("""
            {
              "cniVersion": "1.1.0",
              "code": 7,
              "msg": "Invalid Configuration",
              "details": "Network 192.168.0.0/31 too small to allocate from."
            }

            """, Encoding.UTF8.GetString(ms.ToArray()));

        ms = new MemoryStream();
        CniHost.WriteError(ms, "0.3.1", 11, "lock busy", "");
        Assert.Equal("""{"cniVersion":"0.3.1","code":11,"msg":"lock busy"}""",
            Encoding.UTF8.GetString(ms.ToArray()).Replace("\n", "").Replace("  ", "").Replace(": ", ":"));
    }
}
