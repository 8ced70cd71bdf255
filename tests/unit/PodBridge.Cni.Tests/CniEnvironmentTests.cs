using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

public class CniEnvironmentTests
{
    private const string Stdin = """{"cniVersion":"1.0.0","name":"net1","type":"podbridge"}""";

    private static CniRequest Parse(string env, string stdin = Stdin) =>
        CniEnvironment.Parse(Env(Pairs(env)), () => Utf8(stdin));

    [Fact]
    public void Add_with_every_variable_fills_the_request()
    {
        var r = Parse("CNI_COMMAND=ADD|CNI_CONTAINERID=c0ffee|CNI_NETNS=/run/netns/pod1|CNI_IFNAME=eth0"
                      + "|CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web|CNI_PATH=/opt/cni/bin:/usr/lib/cni");
        Assert.Equal(CniVerb.Add, r.Verb);
        Assert.Equal("c0ffee", r.ContainerId);
        Assert.Equal("/run/netns/pod1", r.NetNs);
        Assert.True(r.HasNetNs);
        Assert.Equal("eth0", r.IfName);
        Assert.Equal("web", r.Args.PodName);
        Assert.Equal(["/opt/cni/bin", "/usr/lib/cni"], r.Path);
        Assert.Equal(Stdin, System.Text.Encoding.UTF8.GetString(r.StdinConfig));
        Assert.Equal(6, r.Environment.Count);
        Assert.Equal("IgnoreUnknown=1;K8S_POD_NAME=web", r.Environment["CNI_ARGS"]);
    }

    [Theory]
    [InlineData("ADD", CniVerb.Add)]
    [InlineData("CHECK", CniVerb.Check)]
    [InlineData("DEL", CniVerb.Del)]
    [InlineData("GC", CniVerb.Gc)]
    [InlineData("STATUS", CniVerb.Status)]
    [InlineData("VERSION", CniVerb.Version)]
    public void Every_verb_is_recognised(string command, CniVerb verb)
    {
        var r = Parse($"CNI_COMMAND={command}|CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0");
        Assert.Equal(verb, r.Verb);
    }

    // Every verb x every variable it requires, both absent and set to "" (libcni exports "" for unused ones).
    [Theory]
    [InlineData("ADD", "CNI_CONTAINERID")]
    [InlineData("ADD", "CNI_NETNS")]
    [InlineData("ADD", "CNI_IFNAME")]
    [InlineData("CHECK", "CNI_CONTAINERID")]
    [InlineData("CHECK", "CNI_NETNS")]
    [InlineData("CHECK", "CNI_IFNAME")]
    [InlineData("DEL", "CNI_CONTAINERID")]
    [InlineData("DEL", "CNI_IFNAME")]
    public void Missing_required_variable_is_code_4_naming_it(string command, string missing)
    {
        var all = new[] { ("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/x"), ("CNI_IFNAME", "eth0") };
        foreach (var empty in new[] { false, true })
        {
            var vars = all.Where(v => v.Item1 != missing).Append(("CNI_COMMAND", command)).ToList();
            if (empty) vars.Add((missing, ""));
            var e = Throws(() => CniEnvironment.Parse(Env(vars.ToArray()), () => Utf8(Stdin)));
            Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
            Assert.Equal($"{missing} is required for {command} but is not set", e.Message);
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("CNI_COMMAND=")]
    [InlineData("CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0")]
    public void Missing_command_is_code_4(string env)
    {
        var e = Throws(() => Parse(env));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.Equal("CNI_COMMAND is not set", e.Message);
    }

    [Theory]
    [InlineData("FOO")]
    [InlineData("add")]
    [InlineData("DELETE")]
    [InlineData(" ADD")]
    public void Unknown_command_is_code_4_naming_it(string command)
    {
        var e = Throws(() => Parse($"CNI_COMMAND={command}|CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0"));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.StartsWith($"CNI_COMMAND={command} is not a CNI command", e.Message);
    }

    [Fact]
    public void Del_does_not_need_a_netns()
    {
        var r = Parse("CNI_COMMAND=DEL|CNI_CONTAINERID=c1|CNI_NETNS=|CNI_IFNAME=eth0|CNI_ARGS=|CNI_PATH=");
        Assert.Equal(CniVerb.Del, r.Verb);
        Assert.Equal("", r.NetNs);
        Assert.False(r.HasNetNs);
        Assert.Empty(r.Path);
        Assert.Empty(r.Args.Values);
        // Empty variables are unset: they are not passed on to a delegated plugin as set.
        Assert.Equal(["CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME"], r.Environment.Keys.Order());
    }

    [Theory]
    [InlineData("GC")]
    [InlineData("STATUS")]
    public void Gc_and_status_need_only_the_command(string command)
    {
        var r = Parse($"CNI_COMMAND={command}|CNI_CONTAINERID=|CNI_NETNS=|CNI_IFNAME=|CNI_ARGS=|CNI_PATH=");
        Assert.Equal("", r.ContainerId);
        Assert.Equal("", r.IfName);
        Assert.Equal(Stdin, System.Text.Encoding.UTF8.GetString(r.StdinConfig));
    }

    // What libcni's GetVersionInfo really exports, and worse: VERSION must validate none of it.
    [Theory]
    [InlineData("CNI_COMMAND=VERSION|CNI_CONTAINERID=|CNI_NETNS=dummy|CNI_IFNAME=dummy|CNI_ARGS=|CNI_PATH=dummy")]
    [InlineData("CNI_COMMAND=VERSION")]
    [InlineData("CNI_COMMAND=VERSION|CNI_CONTAINERID=-bad id|CNI_IFNAME=far-too-long-for-a-link|CNI_ARGS=garbage;NOPE=1")]
    [InlineData("CNI_COMMAND=VERSION|CNI_IFNAME=a/b|CNI_CONTAINERID=$$$")]
    public void Version_ignores_every_other_variable(string env)
    {
        var r = Parse(env, """{"cniVersion":"1.0.0"}""");
        Assert.Equal(CniVerb.Version, r.Verb);
        Assert.Empty(r.Args.Values);
        Assert.Equal("""{"cniVersion":"1.0.0"}""", System.Text.Encoding.UTF8.GetString(r.StdinConfig));
    }

    [Fact]
    public void Version_tolerates_unreadable_stdin()
    {
        var r = CniEnvironment.Parse(Env(("CNI_COMMAND", "VERSION")), () => throw new IOException("EBADF"));
        Assert.Empty(r.StdinConfig);
    }

    [Fact]
    public void Unreadable_stdin_is_code_5_for_other_verbs()
    {
        var e = Throws(() => CniEnvironment.Parse(
            Env(("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "c1"), ("CNI_IFNAME", "eth0")),
            () => throw new IOException("EBADF")));
        Assert.Equal(CniErrorCode.IoFailure, e.Code);
        Assert.Contains("EBADF", e.Message);
    }

    [Theory]
    [InlineData("ADD")]
    [InlineData("CHECK")]
    [InlineData("DEL")]
    public void Attachment_verbs_validate_container_id_and_ifname(string command)
    {
        var badId = Throws(() => Parse($"CNI_COMMAND={command}|CNI_CONTAINERID=-c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0"));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, badId.Code);
        Assert.StartsWith("CNI_CONTAINERID=-c1 is invalid", badId.Message);

        var badIf = Throws(() => Parse($"CNI_COMMAND={command}|CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth:0"));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, badIf.Code);
        Assert.StartsWith("CNI_IFNAME=eth:0 is invalid", badIf.Message);
    }

    [Theory]
    [InlineData("ADD")]
    [InlineData("DEL")]
    [InlineData("GC")]
    public void Bad_cni_args_are_code_4(string command)
    {
        var e = Throws(() => Parse($"CNI_COMMAND={command}|CNI_CONTAINERID=c1|CNI_NETNS=/run/netns/x|CNI_IFNAME=eth0|CNI_ARGS=FOO=1"));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.Contains("'FOO'", e.Message);
    }

    [Theory]
    [InlineData("/opt/cni/bin", new[] { "/opt/cni/bin" })]
    [InlineData("/opt/cni/bin:/usr/lib/cni", new[] { "/opt/cni/bin", "/usr/lib/cni" })]
    [InlineData(":/opt/cni/bin::/usr/lib/cni:", new[] { "/opt/cni/bin", "/usr/lib/cni" })]
    [InlineData("", new string[0])]
    public void Cni_path_is_split_on_colons(string path, string[] expected)
    {
        var r = Parse($"CNI_COMMAND=STATUS|CNI_PATH={path}");
        Assert.Equal(expected, r.Path);
    }

    [Fact]
    public void Stdin_is_read_once()
    {
        var reads = 0;
        CniEnvironment.Parse(Env(("CNI_COMMAND", "STATUS")), () => { reads++; return Utf8(Stdin); });
        Assert.Equal(1, reads);
    }
}
