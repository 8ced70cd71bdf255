using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

/// <summary>Runs a shell-script stand-in for an IPAM binary from a temporary CNI_PATH directory.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DelegatedPluginTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pbt-cni-").FullName;
    private const string Config = """{"cniVersion":"1.0.0","name":"net1","type":"podbridge","ipam":{"type":"fake-ipam"}}""";

    public DelegatedPluginTests()
    {
        // ADD prints a result; DEL fails with an error object; anything else succeeds silently.
        // Each run records its stdin and its CNI_* environment next to itself.
        var script = $$"""
            #!/bin/sh
            cat > "{{_dir}}/stdin.$CNI_COMMAND"
            env | grep '^CNI_' | sort > "{{_dir}}/env.$CNI_COMMAND"
            case "$CNI_COMMAND" in
              ADD) printf '%s' '{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.9/16","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}]}' ;;
              DEL) printf '%s' '{"cniVersion":"1.0.0","code":11,"msg":"store busy","details":"lock held by pid 42"}'; exit 1 ;;
              CHECK) echo 'not json at all'; exit 3 ;;
            esac
            """;
        var path = Path.Combine(_dir, "fake-ipam");
        File.WriteAllText(path, script.Replace("\r", ""));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private CniRequest Request(string verb, string path) => CniEnvironment.Parse(
        Env(("CNI_COMMAND", verb), ("CNI_CONTAINERID", "c0ffee"), ("CNI_NETNS", "/run/netns/pod1"), ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=web"), ("CNI_PATH", path)),
        () => Utf8(Config));

    [Fact]
    public void Add_runs_the_binary_with_our_env_and_stdin_and_parses_its_result()
    {
        var request = Request("ADD", $"/nonexistent:{_dir}");
        var result = new DelegatedPlugin("fake-ipam").Add(request, NetConf.Parse(request.StdinConfig));

        var ip = Assert.Single(result.Ips);
        Assert.Equal("10.1.0.9/16", ip.Address.ToString());
        Assert.Equal("10.1.0.1", ip.Gateway!.ToString());
        Assert.Null(ip.Interface);
        Assert.Equal("0.0.0.0/0", Assert.Single(result.Routes).Dst.ToString());

        Assert.Equal(Config, File.ReadAllText(Path.Combine(_dir, "stdin.ADD")));
        Assert.Equal($"""
            CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web
            CNI_COMMAND=ADD
            CNI_CONTAINERID=c0ffee
            CNI_IFNAME=eth0
            CNI_NETNS=/run/netns/pod1
            CNI_PATH=/nonexistent:{_dir}

            """, File.ReadAllText(Path.Combine(_dir, "env.ADD")));
    }

    [Fact]
    public void The_verb_is_the_one_delegated_not_the_callers()
    {
        // The child sees the delegated verb, not the caller's (bridge's ADD rolls back with an IPAM DEL).
        var request = Request("ADD", _dir);
        var ipam = new DelegatedPlugin("fake-ipam");
        ipam.Status(request, NetConf.Parse(request.StdinConfig));
        Assert.Contains("CNI_COMMAND=STATUS", File.ReadAllText(Path.Combine(_dir, "env.STATUS")));
    }

    [Fact]
    public void Error_object_of_the_delegate_keeps_its_code()
    {
        var request = Request("DEL", _dir);
        var e = Throws(() => new DelegatedPlugin("fake-ipam").Del(request, NetConf.Parse(request.StdinConfig)));
        Assert.Equal(CniErrorCode.TryAgainLater, e.Code);
        Assert.Equal("IPAM plugin 'fake-ipam' DEL failed: store busy (lock held by pid 42)", e.Message);
    }

    [Fact]
    public void Non_json_failure_is_code_107_with_the_output()
    {
        var request = Request("CHECK", _dir);
        var e = Throws(() => new DelegatedPlugin("fake-ipam").Check(request, NetConf.Parse(request.StdinConfig)));
        Assert.Equal(CniErrorCode.DelegateFailed, e.Code);
        Assert.Equal("IPAM plugin 'fake-ipam' CHECK failed: not json at all", e.Message);
    }

    [Fact]
    public void Missing_binary_is_code_107()
    {
        var request = Request("ADD", $"{_dir}:/nonexistent");
        var e = Throws(() => new DelegatedPlugin("no-such-ipam").Add(request, NetConf.Parse(request.StdinConfig)));
        Assert.Equal(CniErrorCode.DelegateFailed, e.Code);
        Assert.Equal($"IPAM plugin 'no-such-ipam' not found in CNI_PATH ({_dir}:/nonexistent)", e.Message);
    }

    [Fact]
    public void Empty_cni_path_is_code_4_naming_it()
    {
        var request = Request("ADD", "");
        var e = Throws(() => new DelegatedPlugin("fake-ipam").Add(request, NetConf.Parse(request.StdinConfig)));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.Equal("CNI_PATH is required to run IPAM plugin 'fake-ipam' but is not set", e.Message);
    }

    [Theory]
    [InlineData("../fake-ipam")]
    [InlineData("/usr/lib/cni/host-local")]
    [InlineData(".")]
    [InlineData("..")]
    public void Ipam_type_must_be_a_name(string type)
    {
        var request = Request("ADD", _dir);
        var e = Throws(() => new DelegatedPlugin(type).Add(request, NetConf.Parse(request.StdinConfig)));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal($"ipam.type '{type}' must be a plugin name, not a path", e.Message);
    }
}
