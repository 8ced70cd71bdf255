using System.Text.Json;
using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

public class NetConfTests
{
    private static NetConf Parse(string json) => NetConf.Parse(Utf8(json));

    [Fact]
    public void Minimal_config()
    {
        var c = Parse("""{"cniVersion":"1.0.0","name":"net1","type":"podbridge"}""");
        Assert.Equal("1.0.0", c.Version);
        Assert.Equal("net1", c.Name);
        Assert.Equal("podbridge", c.Type);
        Assert.Null(c.Ipam);
        Assert.Null(c.PrevResult);
        Assert.Equal("""{"cniVersion":"1.0.0","name":"net1","type":"podbridge"}""", System.Text.Encoding.UTF8.GetString(c.Json));
    }

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    [InlineData("0.4.0")]
    [InlineData("1.0.0")]
    [InlineData("1.1.0")]
    public void Every_supported_version_parses(string version) =>
        Assert.Equal(version, Parse($$"""{"cniVersion":"{{version}}","name":"n"}""").Version);

    [Fact]
    public void Full_bridge_config_as_a_runtime_sends_it()
    {
        var c = Parse("""
            {
              "cniVersion": "1.1.0",
              "cniVersions": ["0.4.0", "1.0.0", "1.1.0"],
              "name": "k8s-pod-network",
              "type": "podbridge",
              "bridge": "cni0",
              "isGateway": true,
              "isDefaultGateway": true,
              "forceAddress": false,
              "ipMasq": true,
              "mtu": 1450,
              "hairpinMode": true,
              "promiscMode": false,
              "vlan": 100,
              "enabledad": true,
              "disableCheck": true,
              "disableGC": false,
              "someVendorKey": {"nested": [1, 2, {"x": null}]},
              "capabilities": {"portMappings": true, "ips": true},
              "ipam": {
                "type": "podbridge-ipam",
                "ranges": [[{"subnet": "10.1.0.0/16", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.200", "gateway": "10.1.0.1"}],
                           [{"subnet": "fd00::/64"}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
                "dataDir": "/var/lib/cni/networks",
                "resolvConf": "/etc/resolv.conf"
              },
              "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["svc.cluster.local"], "options": ["ndots:5"]},
              "runtimeConfig": {"ips": ["10.1.0.50/16"], "mac": "0a:58:0a:01:00:32", "portMappings": [{"hostPort": 8080}]},
              "args": {"cni": {"ips": ["10.1.0.51"], "mac": "0a:58:0a:01:00:33", "labels": [{"key": "app", "value": "web"}]}},
              "logFile": "",
              "logLevel": "debug",
              "prevResult": {"cniVersion": "1.1.0", "ips": [{"address": "10.1.0.5/16"}]}
            }
            """);
        Assert.Equal("1.1.0", c.Version);
        Assert.Equal(["0.4.0", "1.0.0", "1.1.0"], c.CniVersions!);
        // The bridge keys and the rest of the ipam section belong to their owners (plugin and IPAM tests).
        Assert.True(c.DisableCheck);
        Assert.True(c.Capabilities!["portMappings"]);
        Assert.Equal("podbridge-ipam", c.Ipam!.Type);
        Assert.Equal(["ndots:5"], c.Dns!.Options!);
        Assert.Equal(["10.1.0.50/16"], c.RuntimeConfig!.Ips!);
        Assert.Equal("0a:58:0a:01:00:32", c.RuntimeConfig.Mac);
        Assert.Equal(["10.1.0.51"], c.Args!.Cni!.Ips!);
        Assert.Equal("debug", c.LogLevel);
        Assert.Equal(JsonValueKind.Object, c.PrevResult!.Value.ValueKind);
        Assert.Equal("10.1.0.5/16", c.PrevResult.Value.GetProperty("ips")[0].GetProperty("address").GetString());
    }

    [Theory]
    [InlineData("", "no network config on stdin")]
    [InlineData("   ", "network config on stdin is not valid JSON")]
    [InlineData("not json", "network config on stdin is not valid JSON")]
    [InlineData("[1]", "network config on stdin must be a JSON object")]
    [InlineData("null", "network config on stdin must be a JSON object")]
    [InlineData("\"cniVersion\"", "network config on stdin must be a JSON object")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n"} x""", "network config on stdin is not valid JSON")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n"}{}""", "network config on stdin is not valid JSON")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n",}""", "network config on stdin is not valid JSON")]
    [InlineData("""{"cniVersion":"1.0.0", /* c */ "name":"n"}""", "network config on stdin is not valid JSON")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n" """, "network config on stdin is not valid JSON")]
    [InlineData("""{'cniVersion':'1.0.0','name':'n'}""", "network config on stdin is not valid JSON")]
    public void Malformed_json_is_code_6(string json, string message)
    {
        var e = Throws(() => Parse(json));
        Assert.Equal(CniErrorCode.DecodingFailure, e.Code);
        Assert.StartsWith(message, e.Message);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","ipam":[]}""", "ipam")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","ipam":{"type":5}}""", "ipam.type")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","dns":{"nameservers":"10.0.0.10"}}""", "dns.nameservers")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"mac":1}}""", "runtimeConfig.mac")]
    [InlineData("""{"cniVersion":"1.0.0","name":"n","capabilities":{"ips":"yes"}}""", "capabilities.ips")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":{}}""", "cni.dev/valid-attachments")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/attachments":[{"containerID":1}]}""", "cni.dev/attachments[0].containerID")]
    [InlineData("""{"cniVersion":1.0,"name":"n"}""", "cniVersion")]
    [InlineData("""{"cniVersion":"1.0.0","name":7}""", "name")]
    public void Known_key_of_the_wrong_type_is_code_7_naming_it(string json, string key)
    {
        var e = Throws(() => Parse(json));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal($"network config: {key} has the wrong type", e.Message);
        Assert.NotNull(e.Details);
    }

    [Theory]
    [InlineData("""{"name":"n"}""")]
    [InlineData("""{"cniVersion":"","name":"n"}""")]
    [InlineData("""{"cniVersion":null,"name":"n"}""")]
    public void Missing_cniVersion_is_code_7(string json)
    {
        var e = Throws(() => Parse(json));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal("network config: cniVersion is required", e.Message);
    }

    [Theory]
    [InlineData("0.1.0")]
    [InlineData("0.2.0")]
    [InlineData("1.2.0")]
    [InlineData("2.0.0")]
    [InlineData("1.0")]
    [InlineData("v1.0.0")]
    [InlineData("latest")]
    public void Unsupported_cniVersion_is_code_1(string version)
    {
        var e = Throws(() => Parse($$"""{"cniVersion":"{{version}}","name":"n"}"""));
        Assert.Equal(CniErrorCode.IncompatibleVersion, e.Code);
        Assert.Equal($"cniVersion {version} is not supported (supported: 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0)", e.Message);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.0.0"}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":""}""")]
    [InlineData("""{"cniVersion":"1.0.0","name":null}""")]
    public void Missing_name_is_code_7(string json)
    {
        var e = Throws(() => Parse(json));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal("network config: name is required", e.Message);
    }

    [Theory]
    [InlineData("-net")]
    [InlineData(".net")]
    [InlineData("my net")]
    [InlineData("a/b")]
    [InlineData("..")]
    [InlineData("nét")]
    [InlineData("net\\u0000")]
    public void Invalid_name_is_code_7(string name)
    {
        var e = Throws(() => Parse($$"""{"cniVersion":"1.0.0","name":"{{name}}"}"""));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.StartsWith("network config: name '", e.Message);
        Assert.Contains("is invalid", e.Message);
    }

    [Fact]
    public void Keys_are_case_sensitive_so_a_misspelt_version_counts_as_missing()
    {
        var e = Throws(() => Parse("""{"CNIVersion":"1.0.0","name":"n"}"""));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
    }

    [Fact]
    public void Json_null_prevResult_is_absent()
    {
        Assert.Null(Parse("""{"cniVersion":"1.0.0","name":"n","prevResult":null}""").PrevResult);
    }

    [Theory]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"},{"containerID":"c2","ifname":"net1"}]}""", "c1/eth0,c2/net1")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/attachments":[{"containerID":"c3","ifname":"eth0"}]}""", "c3/eth0")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"c3","ifname":"eth0"}]}""", "c1/eth0")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":null}""", "")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n","cni.dev/valid-attachments":[]}""", "")]
    [InlineData("""{"cniVersion":"1.1.0","name":"n"}""", "")]
    public void Gc_attachments(string json, string expected)
    {
        var list = Parse(json).GcValidAttachments.Select(a => $"{a.ContainerId}/{a.IfName}");
        Assert.Equal(expected, string.Join(",", list));
    }

    [Theory]
    [InlineData("""{"cniVersion":"0.4.0"}""", "0.4.0")]
    [InlineData("""{"cniVersion":"9.9.9","name":"n"}""", "9.9.9")]
    [InlineData("""{"name":"x","ipam":{"cniVersion":"9.0.0","a":[1,{"b":2}]},"cniVersion":"1.1.0"}""", "1.1.0")]
    [InlineData("""{"name":"x","cniVersion":"1.0.0", broken""", "1.0.0")]
    [InlineData("""  {"cniVersion":"0.3.1"}  """, "0.3.1")]
    [InlineData("""{"cniVersion":1}""", null)]
    [InlineData("""{"cniVersion":""}""", null)]
    [InlineData("""{"cniVersion":null}""", null)]
    [InlineData("""{"name":"x"}""", null)]
    [InlineData("""{"ipam":{"cniVersion":"1.0.0"}}""", null)]
    [InlineData("""{"a":{"b":[1,2""", null)]
    [InlineData("""["cniVersion","1.0.0"]""", null)]
    [InlineData("garbage", null)]
    [InlineData("", null)]
    public void PeekVersion(string json, string? expected) => Assert.Equal(expected, NetConf.PeekVersion(Utf8(json)));
}
