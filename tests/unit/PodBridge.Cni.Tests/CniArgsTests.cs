using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

public class CniArgsTests
{
    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData(";")]
    public void Empty_is_no_arguments(string raw) => Assert.Empty(CniArgs.Parse(raw).Values);

    [Theory]
    [InlineData("IgnoreUnknown=1;FOO=bar")]
    [InlineData("FOO=bar;IgnoreUnknown=1")]
    [InlineData("FOO=bar;IgnoreUnknown=true;BAR=1")]
    [InlineData("IgnoreUnknown=TRUE;FOO=bar")]
    [InlineData("IgnoreUnknown=True;FOO=bar")]
    [InlineData("FOO=bar;BAR=baz;IgnoreUnknown=1;")]
    public void IgnoreUnknown_anywhere_admits_unknown_keys(string raw)
    {
        var args = CniArgs.Parse(raw);
        Assert.Equal("bar", args.Get("FOO"));
        Assert.Null(args.Get("NOPE"));
    }

    [Theory]
    [InlineData("FOO=bar", "FOO")]
    [InlineData("IP=10.1.0.7;FOO=bar", "FOO")]
    [InlineData("IgnoreUnknown=0;FOO=bar", "FOO")]
    [InlineData("IgnoreUnknown=false;FOO=bar", "FOO")]
    [InlineData("IgnoreUnknown=yes;FOO=bar", "FOO")]
    [InlineData("IgnoreUnknown=;FOO=bar", "FOO")]
    [InlineData("ip=10.1.0.7", "ip")] // keys are case-sensitive
    [InlineData("ignoreunknown=1", "ignoreunknown")]
    public void Unknown_key_without_IgnoreUnknown_is_code_4_naming_it(string raw, string key)
    {
        var e = Throws(() => CniArgs.Parse(raw));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.StartsWith($"CNI_ARGS: unknown key '{key}'", e.Message);
    }

    [Theory]
    [InlineData("FOO", "FOO")]
    [InlineData("=bar", "=bar")]
    [InlineData("IgnoreUnknown=1;garbage", "garbage")]
    [InlineData("IP=10.1.0.7;=x;MAC=0a:58:00:00:00:01", "=x")]
    public void Malformed_pair_is_code_4_naming_it(string raw, string pair)
    {
        var e = Throws(() => CniArgs.Parse(raw));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.Equal($"CNI_ARGS: '{pair}' is not a KEY=VALUE pair", e.Message);
    }

    // Exactly what containerd's CRI plugin sends.
    [Fact]
    public void Kubernetes_keys()
    {
        var args = CniArgs.Parse("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-7c5ddbdf54-x2x9z;"
                                 + "K8S_POD_INFRA_CONTAINER_ID=4d5e6f70;K8S_POD_UID=0f9e8d7c-6b5a-4938-2716-05f4e3d2c1b0");
        Assert.Equal("default", args.PodNamespace);
        Assert.Equal("nginx-7c5ddbdf54-x2x9z", args.PodName);
        Assert.Equal("4d5e6f70", args.Get("K8S_POD_INFRA_CONTAINER_ID"));
        Assert.Equal("0f9e8d7c-6b5a-4938-2716-05f4e3d2c1b0", args.Get("K8S_POD_UID"));
        Assert.Null(args.Ip);
        Assert.Null(args.Mac);
    }

    [Fact]
    public void Kubernetes_keys_are_known_without_IgnoreUnknown()
    {
        var args = CniArgs.Parse("K8S_POD_NAMESPACE=kube-system;K8S_POD_NAME=coredns;K8S_POD_INFRA_CONTAINER_ID=x;K8S_POD_UID=y");
        Assert.Equal("kube-system", args.PodNamespace);
        Assert.Equal("coredns", args.PodName);
    }

    [Theory]
    [InlineData("IP=10.1.0.7", "10.1.0.7")]
    [InlineData("IP=10.1.0.7,fd00::7", "10.1.0.7,fd00::7")]
    [InlineData("IgnoreUnknown=1;IP=10.1.0.7,10.2.0.7,fd00::7;K8S_POD_NAME=a", "10.1.0.7,10.2.0.7,fd00::7")]
    public void IP_keeps_comma_separated_addresses(string raw, string ip) => Assert.Equal(ip, CniArgs.Parse(raw).Ip);

    [Fact]
    public void MAC_is_read()
    {
        Assert.Equal("0a:58:0a:01:00:07", CniArgs.Parse("MAC=0a:58:0a:01:00:07").Mac);
    }

    [Fact]
    public void Later_duplicate_wins()
    {
        Assert.Equal("10.1.0.8", CniArgs.Parse("IP=10.1.0.7;IP=10.1.0.8").Ip);
    }

    [Fact]
    public void Empty_singleton_is_empty() => Assert.Empty(CniArgs.Empty.Values);
}
