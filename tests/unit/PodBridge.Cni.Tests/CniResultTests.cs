using System.Net;
using System.Text;
using System.Text.Json;
using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

public class CniResultTests
{
    /// <summary>The reference bridge layout: bridge, host veth, pod interface; dual-stack addresses on the pod end.</summary>
    private static CniResult BridgeResult() => new()
    {
        Interfaces =
        [
            new CniInterface { Name = "cni0", Mac = "0A:58:0A:01:00:01", Mtu = 1500 },
            new CniInterface { Name = "veth1a2b3c4d", Mac = "aa:bb:cc:dd:ee:01", Mtu = 1500 },
            new CniInterface { Name = "eth0", Mac = "AA:BB:CC:DD:EE:02", Mtu = 1500, Sandbox = "/run/netns/pod1" },
        ],
        Ips =
        [
            new CniIpConfig { Address = IpCidr.Parse("10.1.0.5/16", "t"), Gateway = IPAddress.Parse("10.1.0.1"), Interface = 2 },
            new CniIpConfig { Address = IpCidr.Parse("fd00::5/64", "t"), Gateway = IPAddress.Parse("fd00::1"), Interface = 2 },
        ],
        Routes =
        [
            new CniRoute { Dst = IpCidr.Parse("0.0.0.0/0", "t"), Gw = IPAddress.Parse("10.1.0.1") },
            new CniRoute { Dst = IpCidr.Parse("::/0", "t") },
        ],
    };

    private static string Text(byte[] b) => Encoding.UTF8.GetString(b);

    private const string Bridge100 = """
        {
          "cniVersion": "1.0.0",
          "interfaces": [
            {
              "name": "cni0",
              "mac": "0a:58:0a:01:00:01"
            },
            {
              "name": "veth1a2b3c4d",
              "mac": "aa:bb:cc:dd:ee:01"
            },
            {
              "name": "eth0",
              "mac": "aa:bb:cc:dd:ee:02",
              "sandbox": "/run/netns/pod1"
            }
          ],
          "ips": [
            {
              "interface": 2,
              "address": "10.1.0.5/16",
              "gateway": "10.1.0.1"
            },
            {
              "interface": 2,
              "address": "fd00::5/64",
              "gateway": "fd00::1"
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0",
              "gw": "10.1.0.1"
            },
            {
              "dst": "::/0"
            }
          ]
        }
        """;

    private const string Bridge110 = """
        {
          "cniVersion": "1.1.0",
          "interfaces": [
            {
              "name": "cni0",
              "mac": "0a:58:0a:01:00:01",
              "mtu": 1500
            },
            {
              "name": "veth1a2b3c4d",
              "mac": "aa:bb:cc:dd:ee:01",
              "mtu": 1500
            },
            {
              "name": "eth0",
              "mac": "aa:bb:cc:dd:ee:02",
              "mtu": 1500,
              "sandbox": "/run/netns/pod1"
            }
          ],
          "ips": [
            {
              "interface": 2,
              "address": "10.1.0.5/16",
              "gateway": "10.1.0.1"
            },
            {
              "interface": 2,
              "address": "fd00::5/64",
              "gateway": "fd00::1"
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0",
              "gw": "10.1.0.1"
            },
            {
              "dst": "::/0"
            }
          ]
        }
        """;

    private const string Bridge040 = """
        {
          "cniVersion": "0.4.0",
          "interfaces": [
            {
              "name": "cni0",
              "mac": "0a:58:0a:01:00:01"
            },
            {
              "name": "veth1a2b3c4d",
              "mac": "aa:bb:cc:dd:ee:01"
            },
            {
              "name": "eth0",
              "mac": "aa:bb:cc:dd:ee:02",
              "sandbox": "/run/netns/pod1"
            }
          ],
          "ips": [
            {
              "version": "4",
              "interface": 2,
              "address": "10.1.0.5/16",
              "gateway": "10.1.0.1"
            },
            {
              "version": "6",
              "interface": 2,
              "address": "fd00::5/64",
              "gateway": "fd00::1"
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0",
              "gw": "10.1.0.1"
            },
            {
              "dst": "::/0"
            }
          ],
          "dns": {}
        }
        """;

    [Theory]
    [InlineData("1.0.0", Bridge100)]
    [InlineData("1.1.0", Bridge110)]
    [InlineData("0.4.0", Bridge040)]
    public void Bridge_result_per_version(string version, string expected) =>
        Assert.Equal(expected, Text(BridgeResult().ToJson(version)));

    [Theory]
    [InlineData("0.3.0")]
    [InlineData("0.3.1")]
    public void Pre_040_results_look_like_040(string version) =>
        Assert.Equal(Bridge040.Replace("\"0.4.0\"", $"\"{version}\""), Text(BridgeResult().ToJson(version)));

    [Theory]
    [InlineData("1.0.0", """
        {
          "cniVersion": "1.0.0",
          "ips": [
            {
              "interface": 0,
              "address": "10.1.0.5/16"
            }
          ],
          "dns": {
            "nameservers": [
              "10.96.0.10",
              "fd00::a"
            ],
            "domain": "cluster.local",
            "search": [
              "default.svc.cluster.local",
              "svc.cluster.local"
            ],
            "options": [
              "ndots:5"
            ]
          }
        }
        """)]
    [InlineData("0.3.1", """
        {
          "cniVersion": "0.3.1",
          "ips": [
            {
              "version": "4",
              "interface": 0,
              "address": "10.1.0.5/16"
            }
          ],
          "dns": {
            "nameservers": [
              "10.96.0.10",
              "fd00::a"
            ],
            "domain": "cluster.local",
            "search": [
              "default.svc.cluster.local",
              "svc.cluster.local"
            ],
            "options": [
              "ndots:5"
            ]
          }
        }
        """)]
    public void Interface_zero_is_printed_and_dns_when_set(string version, string expected)
    {
        var r = new CniResult
        {
            Ips = [new CniIpConfig { Address = IpCidr.Parse("10.1.0.5/16", "t"), Interface = 0 }],
            Dns = new CniDns
            {
                Nameservers = ["10.96.0.10", "fd00::a"],
                Domain = "cluster.local",
                Search = ["default.svc.cluster.local", "svc.cluster.local"],
                Options = ["ndots:5"],
            },
        };
        Assert.Equal(expected, Text(r.ToJson(version)));
    }

    // What an IPAM plugin returns: no interfaces, no ips[].interface.
    [Theory]
    [InlineData("1.1.0", """
        {
          "cniVersion": "1.1.0",
          "ips": [
            {
              "address": "10.1.0.5/16",
              "gateway": "10.1.0.1"
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0"
            }
          ]
        }
        """)]
    [InlineData("0.4.0", """
        {
          "cniVersion": "0.4.0",
          "ips": [
            {
              "version": "4",
              "address": "10.1.0.5/16",
              "gateway": "10.1.0.1"
            }
          ],
          "routes": [
            {
              "dst": "0.0.0.0/0"
            }
          ],
          "dns": {}
        }
        """)]
    public void Ipam_result_without_interfaces(string version, string expected)
    {
        var r = new CniResult
        {
            Ips = [new CniIpConfig { Address = IpCidr.Parse("10.1.0.5/16", "t"), Gateway = IPAddress.Parse("10.1.0.1") }],
            Routes = [new CniRoute { Dst = IpCidr.Parse("0.0.0.0/0", "t") }],
        };
        Assert.Equal(expected, Text(r.ToJson(version)));
    }

    [Theory]
    [InlineData("1.0.0", """{"cniVersion":"1.0.0"}""")]
    [InlineData("1.1.0", """{"cniVersion":"1.1.0"}""")]
    [InlineData("0.4.0", """{"cniVersion":"0.4.0","dns":{}}""")]
    [InlineData("0.3.0", """{"cniVersion":"0.3.0","dns":{}}""")]
    public void Empty_result(string version, string expected) => Assert.Equal(expected, Compact(new CniResult().ToJson(version)));

    [Theory]
    [InlineData(null, null, """{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}]}""")]
    [InlineData("", 0, """{"cniVersion":"1.1.0","interfaces":[{"name":"eth0"}]}""")]
    [InlineData("02:42:AC:11:00:02", 9000, """{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":"02:42:ac:11:00:02","mtu":9000}]}""")]
    public void Interface_mac_and_mtu_only_when_known(string? mac, int? mtu, string expected)
    {
        var r = new CniResult { Interfaces = [new CniInterface { Name = "eth0", Mac = mac, Mtu = mtu, Sandbox = "" }] };
        Assert.Equal(expected, Compact(r.ToJson("1.1.0")));
    }

    [Fact]
    public void Empty_dns_domain_counts_as_unset()
    {
        var r = new CniResult { Dns = new CniDns { Domain = "" } };
        Assert.True(r.Dns.IsEmpty);
        Assert.Equal("""{"cniVersion":"1.0.0"}""", Compact(r.ToJson("1.0.0")));
    }

    [Fact]
    public void Write_to_a_caller_writer_is_compact_when_asked()
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) BridgeResult().Write(w, "1.0.0");
        Assert.Equal(Compact(Encoding.UTF8.GetBytes(Bridge100)), Text(ms.ToArray()));
    }

    private static string Compact(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms)) doc.WriteTo(w);
        return Text(ms.ToArray());
    }

    // ---- Parse ----

    private static CniResult ParseResult(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return CniResult.Parse(doc.RootElement, "prevResult");
    }

    [Fact]
    public void Parse_a_031_result_with_version_fields_and_write_it_as_100()
    {
        var r = ParseResult("""
            {
              "cniVersion": "0.3.1",
              "interfaces": [
                {"name": "cni0", "mac": "0a:58:0a:01:00:01"},
                {"name": "veth1a2b3c4d", "mac": "aa:bb:cc:dd:ee:01"},
                {"name": "eth0", "mac": "aa:bb:cc:dd:ee:02", "sandbox": "/run/netns/pod1"}
              ],
              "ips": [
                {"version": "4", "interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"},
                {"version": "6", "interface": 2, "address": "fd00::5/64", "gateway": "fd00::1"}
              ],
              "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "::/0"}],
              "dns": {}
            }
            """);
        Assert.Equal(3, r.Interfaces.Count);
        Assert.Equal("/run/netns/pod1", r.Interfaces[2].Sandbox);
        Assert.Null(r.Interfaces[0].Sandbox);
        Assert.Null(r.Interfaces[0].Mtu);
        Assert.Equal(new IpCidr(IPAddress.Parse("10.1.0.5"), 16), r.Ips[0].Address);
        Assert.True(r.Ips[1].Address.IsV6);
        Assert.Equal(2, r.Ips[1].Interface);
        Assert.Null(r.Routes[1].Gw);
        Assert.True(r.Dns.IsEmpty);
        Assert.Equal(Bridge100, Text(r.ToJson("1.0.0")));
    }

    [Theory]
    [InlineData("1.0.0", Bridge100)]
    [InlineData("1.1.0", Bridge110)]
    [InlineData("0.4.0", Bridge040)]
    public void Parse_round_trips_our_own_output(string version, string json) =>
        Assert.Equal(json, Text(ParseResult(json).ToJson(version)));

    [Fact]
    public void Parse_keeps_dns_and_missing_interface_index()
    {
        var r = ParseResult("""
            {"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/16"}],
             "dns":{"nameservers":["10.96.0.10"],"domain":"cluster.local","search":["svc.cluster.local"],"options":["ndots:5"]}}
            """);
        Assert.Null(r.Ips[0].Interface);
        Assert.Null(r.Ips[0].Gateway);
        Assert.Equal(["10.96.0.10"], r.Dns.Nameservers);
        Assert.Equal("cluster.local", r.Dns.Domain);
        Assert.Equal(["svc.cluster.local"], r.Dns.Search);
        Assert.Equal(["ndots:5"], r.Dns.Options);
    }

    [Theory]
    [InlineData("[]", "prevResult must be a JSON object")]
    [InlineData("null", "prevResult must be a JSON object")]
    [InlineData("""{"interfaces":[{"mac":"aa:bb:cc:dd:ee:ff"}]}""", "prevResult: interfaces[].name is missing")]
    [InlineData("""{"interfaces":[{"name":"eth0","mtu":1.5}]}""", "prevResult: interfaces[].mtu 1.5 is not an MTU")]
    [InlineData("""{"interfaces":[{"name":"eth0","mtu":-1}]}""", "prevResult: interfaces[].mtu -1 is not an MTU")]
    [InlineData("""{"ips":[{"gateway":"10.1.0.1"}]}""", "prevResult: ips[].address is missing")]
    [InlineData("""{"ips":[{"address":"10.1.0.5"}]}""", "prevResult: ips[].address '10.1.0.5' is not CIDR")]
    [InlineData("""{"ips":[{"address":"10.1/16"}]}""", "prevResult: ips[].address '10.1/16' is not CIDR")]
    [InlineData("""{"ips":[{"address":"10.1.0.5/16","gateway":"10.1.0"}]}""", "prevResult: ips[].gateway '10.1.0' is not an address")]
    [InlineData("""{"ips":[{"address":"10.1.0.5/16","interface":-1}]}""", "prevResult: ips[].interface -1 is not an index")]
    [InlineData("""{"ips":[{"address":"10.1.0.5/16","interface":1.5}]}""", "prevResult: ips[].interface 1.5 is not an index")]
    [InlineData("""{"ips":[{"address":"10.1.0.5/16","interface":99999999999}]}""", "prevResult: ips[].interface 99999999999 is not an index")]
    [InlineData("""{"routes":[{"gw":"10.1.0.1"}]}""", "prevResult: routes[].dst is missing")]
    [InlineData("""{"routes":[{"dst":"default"}]}""", "prevResult: routes[].dst 'default' is not CIDR")]
    [InlineData("""{"routes":[{"dst":"0.0.0.0/0","gw":"fe80::1%eth0"}]}""", "prevResult: routes[].gw 'fe80::1%eth0' is not an address")]
    public void Parse_errors_are_code_6(string json, string message)
    {
        var e = Throws(() => ParseResult(json));
        Assert.Equal(CniErrorCode.DecodingFailure, e.Code);
        Assert.Equal(message, e.Message);
    }

    // ---- IpCidr ----

    [Theory]
    [InlineData("10.1.0.5/16", "10.1.0.5", 16)]
    [InlineData("0.0.0.0/0", "0.0.0.0", 0)]
    [InlineData("255.255.255.255/32", "255.255.255.255", 32)]
    [InlineData("fd00::5/64", "fd00::5", 64)]
    [InlineData("FD00:0:0::5/64", "fd00::5", 64)]
    [InlineData("::/0", "::", 0)]
    [InlineData("::ffff:10.1.0.5/128", "::ffff:10.1.0.5", 128)]
    public void IpCidr_parses_and_keeps_host_bits(string text, string address, int prefix)
    {
        Assert.True(IpCidr.TryParse(text, out var c));
        Assert.Equal(IPAddress.Parse(address), c.Address);
        Assert.Equal(prefix, c.PrefixLength);
        Assert.Equal($"{address}/{prefix}", c.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("10.1.0.5")]
    [InlineData("/16")]
    [InlineData("10.1.0.5/")]
    [InlineData("10.1.0.5/33")]
    [InlineData("10.1.0.5/-1")]
    [InlineData("10.1.0.5/+8")]
    [InlineData("10.1.0.5/ 8")]
    [InlineData("10.1.0.5 /8")]
    [InlineData("10.1.0.5/8/8")]
    [InlineData("fd00::/129")]
    [InlineData("10.1/16")]          // IPAddress.TryParse alone reads this as 10.0.0.1
    [InlineData("10/8")]
    [InlineData("010.1.0.0/16")]     // ... and this as octal 8.1.0.0
    [InlineData("0x0a.1.0.0/16")]
    [InlineData("10.1.0.256/16")]
    [InlineData("10.1.0.0.0/16")]
    [InlineData("10..0.0/16")]
    [InlineData("fe80::1%eth0/64")]
    [InlineData("fe80::1%2/64")]
    [InlineData("[fd00::1]/64")]
    [InlineData("fd00:::1/64")]
    [InlineData("not-an-ip/8")]
    public void IpCidr_rejects(string? text) => Assert.False(IpCidr.TryParse(text, out _));

    [Fact]
    public void IpCidr_Parse_is_code_7_naming_the_field()
    {
        var e = Throws(() => IpCidr.Parse("10.1/16", "ipam.ranges[0][0].subnet"));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal("ipam.ranges[0][0].subnet: '10.1/16' is not an address in CIDR form (like 10.1.0.0/16)", e.Message);
    }

    [Theory]
    [InlineData("0.0.0.0", true)]
    [InlineData("192.168.1.10", true)]
    [InlineData("fd00::1", true)]
    [InlineData("::", true)]
    [InlineData("1.2.3", false)]
    [InlineData("1.2.3.04", false)]
    [InlineData("1.2.3.4.", false)]
    [InlineData(".1.2.3.4", false)]
    [InlineData("1.2.3.-4", false)]
    [InlineData("１.2.3.4", false)] // full-width digit
    [InlineData("", false)]
    [InlineData(null, false)]
    public void TryParseAddress_is_strict(string? text, bool ok) => Assert.Equal(ok, IpCidr.TryParseAddress(text, out _));
}
