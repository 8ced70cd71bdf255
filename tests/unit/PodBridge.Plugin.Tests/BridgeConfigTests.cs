using PodBridge.Cni;
using PodBridge.Ipam;
using static PodBridge.Plugin.Tests.Helpers;

namespace PodBridge.Plugin.Tests;

/// <summary>The plugin's pure config validation: BridgeKeys read + BridgeConfig.From/ForTeardown, no kernel.</summary>
public class BridgeConfigTests
{
    private static NetConf Conf(string body, string version = "1.0.0") =>
        NetConf.Parse(Utf8(("{'cniVersion':'" + version + "','name':'net1','type':'podbridge'" + (body.Length > 0 ? "," : "") + body + "}").Replace('\'', '"')));

    private static CniRequest Req(string args = "") =>
        new(CniVerb.Add, "c1", "/run/netns/x", "eth0", CniArgs.Parse(args), [], []) { Environment = new Dictionary<string, string>() };

    private static BridgeConfig From(string body, string args = "") => BridgeConfig.From(Conf(body), Req(args));

    private static CniException Fails(CniErrorCode code, string body, string args = "")
    {
        var e = Throws(() => From(body, args));
        Assert.True(code == e.Code, $"expected {code}, got {e.Code}: {e.Message}");
        return e;
    }

    [Fact]
    public void Full_bridge_config_as_a_runtime_sends_it()
    {
        var conf = NetConf.Parse(Utf8("""
            {
              "cniVersion": "1.1.0", "name": "k8s-pod-network", "type": "podbridge",
              "bridge": "cni0", "isGateway": true, "isDefaultGateway": true, "forceAddress": false, "ipMasq": true,
              "mtu": 1450, "hairpinMode": true, "promiscMode": false, "vlan": 100, "enabledad": true,
              "someVendorKey": {"nested": [1, 2, {"x": null}]},
              "ipam": {
                "type": "podbridge-ipam",
                "ranges": [[{"subnet": "10.1.0.0/16", "rangeStart": "10.1.0.10", "rangeEnd": "10.1.0.200", "gateway": "10.1.0.1"}],
                           [{"subnet": "fd00::/64"}]],
                "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
                "dataDir": "/var/lib/cni/networks"
              },
              "dns": {"nameservers": ["10.96.0.10"], "domain": "cluster.local"},
              "prevResult": {"cniVersion": "1.1.0", "ips": [{"address": "10.1.0.5/16"}]}
            }
            """));
        var b = BridgeKeys.Read(conf);
        Assert.Equal("cni0", b.Bridge);
        Assert.True(b.IsGateway && b.IsDefaultGateway && b.IpMasq && b.HairpinMode && b.EnableDad);
        Assert.False(b.ForceAddress || b.PromiscMode);
        Assert.Equal(1450, b.Mtu);
        Assert.Equal(100, b.Vlan);

        var i = IpamNetConf.Read(conf).Ipam!;
        Assert.Equal("podbridge-ipam", i.Type);
        Assert.Equal(2, i.Ranges!.Count);
        Assert.Equal("10.1.0.200", i.Ranges[0][0].RangeEnd);
        Assert.Equal("fd00::/64", i.Ranges[1][0].Subnet);
        Assert.Equal("fd00::1", i.Routes![1].Gw);
        Assert.Null(i.Routes[0].Gw);
        Assert.Equal("/var/lib/cni/networks", i.DataDir);

        var cfg = BridgeConfig.ForTeardown(conf);
        Assert.Equal("k8s-pod-network", cfg.Network);
        Assert.Equal(["10.96.0.10"], cfg.Dns.Nameservers);
        Assert.Equal("cluster.local", cfg.Dns.Domain);
        Assert.Equal("10.1.0.5/16", cfg.PrevResult!.Value.GetProperty("ips")[0].GetProperty("address").GetString());
        Assert.Equal("podbridge-ipam", cfg.IpamType);
    }

    [Fact]
    public void Legacy_single_range_ipam()
    {
        var i = IpamNetConf.Read(Conf("'ipam':{'type':'host-local','subnet':'10.2.0.0/24','rangeStart':'10.2.0.5','rangeEnd':'10.2.0.9','gateway':'10.2.0.254'}")).Ipam!;
        Assert.Equal("10.2.0.0/24", i.Subnet);
        Assert.Equal("10.2.0.5", i.RangeStart);
        Assert.Equal("10.2.0.9", i.RangeEnd);
        Assert.Equal("10.2.0.254", i.Gateway);
        Assert.Null(i.Ranges);
    }

    [Theory]
    [InlineData("'mtu':'1500'", "mtu")]
    [InlineData("'mtu':1500.5", "mtu")]
    [InlineData("'vlan':true", "vlan")]
    [InlineData("'isGateway':'true'", "isGateway")]
    [InlineData("'bridge':['cni0']", "bridge")]
    [InlineData("'portIsolation':1", "portIsolation")]
    [InlineData("'ipMasqBackend':false", "ipMasqBackend")]
    public void A_bridge_key_of_the_wrong_type_is_code_7_naming_it(string body, string key)
    {
        var e = Fails(CniErrorCode.InvalidNetworkConfig, body);
        Assert.Equal($"network config: {key} has the wrong type", e.Message);
        // DEL reads the same keys: a wrong type fails there too, as before the split.
        Assert.Equal(e.Message, Throws(() => BridgeConfig.ForTeardown(Conf(body))).Message);
    }

    [Theory]
    [InlineData("'ipam':{'type':'podbridge-ipam','ranges':[[{'subnet':5}]]}", "ipam.ranges[0][0].subnet")]
    [InlineData("'ipam':{'type':'podbridge-ipam','ranges':[{'subnet':'10.0.0.0/8'}]}", "ipam.ranges[0]")]
    [InlineData("'ipam':{'type':'podbridge-ipam','routes':[{'dst':'0.0.0.0/0','gw':1}]}", "ipam.routes[0].gw")]
    [InlineData("'runtimeConfig':{'ipRanges':[[{'gateway':[]}]]}", "runtimeConfig.ipRanges[0][0].gateway")]
    public void An_ipam_key_of_the_wrong_type_is_the_ipams_code_7(string body, string key)
    {
        // Not the bridge's business: only the IPAM's reader names it (a delegated IPAM has its own schema).
        From(body);
        var e = Throws(() => IpamNetConf.Read(Conf(body)));
        Assert.Equal(CniErrorCode.InvalidNetworkConfig, e.Code);
        Assert.Equal($"network config: {key} has the wrong type", e.Message);
    }

    [Fact]
    public void Defaults()
    {
        var c = From("");
        Assert.Equal("cni0", c.BridgeName);
        Assert.Equal("net1", c.Network);
        Assert.False(c.IsGateway || c.IsDefaultGateway || c.IpMasq || c.HairpinMode || c.PromiscMode || c.EnableDad || c.ForceAddress
                     || c.PortIsolation || c.DisableContainerInterface);
        Assert.Null(c.Mtu);
        Assert.Null(c.IpamType);
        Assert.Null(c.Mac);
        Assert.True(c.Dns.IsEmpty);
    }

    [Fact]
    public void PortIsolation_and_disableContainerInterface_are_accepted()
    {
        var c = From("'portIsolation':true,'disableContainerInterface':true,'macspoofchk':true");
        Assert.True(c.MacSpoofChk);
        Assert.True(c.PortIsolation);
        Assert.True(c.DisableContainerInterface);
    }

    [Theory]
    [InlineData("'ipMasqBackend':'nftables'", "nftables")]
    [InlineData("'ipMasqBackend':'iptables'", "iptables")]
    [InlineData("'ipMasqBackend':''", null)]
    [InlineData("", null)]
    public void IpMasqBackend_is_nftables_iptables_or_auto(string body, string? expected) =>
        Assert.Equal(expected, From(body).IpMasqBackend);

    [Fact]
    public void An_unknown_ipMasqBackend_is_code_7_naming_it() =>
        Assert.Contains("ipMasqBackend: 'ebtables'", Fails(CniErrorCode.InvalidNetworkConfig, "'ipMasqBackend':'ebtables'").Message);

    [Theory]
    [InlineData("c0ffee", "eth0", "c0ffee/eth0")]
    [InlineData("abc.1_x-y", "net1", "abc.1_x-y/net1")]
    public void Masquerade_tags_name_the_attachment(string id, string ifName, string tag) =>
        Assert.Equal(tag, Masquerade.Attachment.TagOf(id, ifName));

    [Theory]
    [InlineData("c0ffee", "e\"th0")]
    [InlineData("c0ffee", "eth0;x")]
    public void A_tag_that_would_need_quoting_or_not_fit_is_a_hash(string id, string ifName)
    {
        var tag = Masquerade.Attachment.TagOf(id, ifName);
        Assert.Matches("^attachment-[0-9a-f]{16}$", tag);
        Assert.Equal(tag, Masquerade.Attachment.TagOf(id, ifName));
        Assert.Matches("^attachment-[0-9a-f]{16}$", Masquerade.Attachment.TagOf(new string('a', 100), "eth0"));
    }

    [Fact]
    public void Iptables_chain_names_fit_the_28_character_limit_and_differ_per_attachment()
    {
        var a = MasqueradeIptables.ChainName(new Masquerade.Attachment("net", "c1", "eth0"));
        Assert.Matches("^PB-[0-9a-f]{24}$", a);
        Assert.NotEqual(a, MasqueradeIptables.ChainName(new Masquerade.Attachment("net", "c1", "net1")));
        Assert.NotEqual(a, MasqueradeIptables.ChainName(new Masquerade.Attachment("net2", "c1", "eth0")));
    }

    [Fact]
    public void Vlan_keys_as_the_reference_reads_them()
    {
        var c = From("'vlan':100,'vlanTrunk':[{'id':5},{'minID':10,'maxID':12},{'id':11}]");
        Assert.Equal(100, c.Vlan);
        Assert.Equal([5, 10, 11, 12], c.TrunkVlans.Select(v => (int)v));
        Assert.True(c.PreserveDefaultVlan); // the reference's default
        Assert.True(c.UsesVlans);
        Assert.False(From("'preserveDefaultVlan':false,'vlan':3").PreserveDefaultVlan);
        Assert.False(From("'vlan':0,'vlanTrunk':[]").UsesVlans);
    }

    [Theory]
    [InlineData("'vlan':4095", "vlan: 4095 is outside 0..4094")]
    [InlineData("'vlan':-1", "vlan: -1 is outside 0..4094")]
    [InlineData("'vlanTrunk':[{'id':0}]", "vlanTrunk[0].id: 0 is outside 1..4094")]
    [InlineData("'vlanTrunk':[{'id':1},{'minID':5}]", "vlanTrunk[1]: minID and maxID must be given together (maxID is missing)")]
    [InlineData("'vlanTrunk':[{'maxID':5}]", "vlanTrunk[0]: minID and maxID must be given together (minID is missing)")]
    [InlineData("'vlanTrunk':[{'minID':9,'maxID':5}]", "vlanTrunk[0]: minID 9 is greater than maxID 5")]
    [InlineData("'vlanTrunk':[{'minID':1,'maxID':4095}]", "vlanTrunk[0].maxID: 4095 is outside 1..4094")]
    [InlineData("'vlanTrunk':[{}]", "vlanTrunk[0]: needs id, or minID and maxID")]
    [InlineData("'bridge':'averylongbr','isGateway':true,'vlan':1000", "bridge: 'averylongbr' is too long for the VLAN gateway interface")]
    public void Invalid_vlan_keys_are_code_7_naming_the_key(string body, string message) =>
        Assert.StartsWith(message, Fails(CniErrorCode.InvalidNetworkConfig, body).Message);

    [Fact]
    public void A_trunk_entry_of_the_wrong_type_is_code_7_with_its_path() =>
        Assert.Equal("network config: vlanTrunk[0].id has the wrong type", Fails(CniErrorCode.InvalidNetworkConfig, "'vlanTrunk':[{'id':'5'}]").Message);

    [Fact]
    public void An_empty_ipam_section_is_L2_like_the_reference() => Assert.Null(From("'ipam':{}").CreateIpam());

    [Fact]
    public void IsDefaultGateway_implies_isGateway() => Assert.True(From("'isDefaultGateway':true").IsGateway);

    [Theory]
    [InlineData("'bridge':'a/b'", "bridge: 'a/b' is not a valid interface name")]
    [InlineData("'bridge':'abcdefghijklmnop'", "bridge: 'abcdefghijklmnop' is not a valid interface name")]
    [InlineData("'mtu':67", "mtu: 67 is outside 68..65535")]
    [InlineData("'mtu':65536", "mtu: 65536 is outside 68..65535")]
    [InlineData("'hairpinMode':true,'promiscMode':true", "hairpinMode and promiscMode cannot both be true")]
    [InlineData("'ipam':{'subnet':'10.0.0.0/8'}", "ipam.type is required when an ipam section is given")]
    [InlineData("'ipam':{'type':''}", "ipam.type is required when an ipam section is given")]
    [InlineData("'runtimeConfig':{'mac':'nope'}", "runtimeConfig.mac: 'nope' is not a MAC address")]
    [InlineData("'args':{'cni':{'mac':'01:00:5e:00:00:01'}}", "args.cni.mac: '01:00:5e:00:00:01' is a multicast MAC address")]
    public void Invalid_values_are_code_7_naming_the_key(string body, string message) =>
        Assert.StartsWith(message, Fails(CniErrorCode.InvalidNetworkConfig, body).Message);

    [Fact]
    public void Mac_priority_is_runtimeConfig_then_args_then_CNI_ARGS()
    {
        const string rt = "'runtimeConfig':{'mac':'0a:00:00:00:00:01'}", args = "'args':{'cni':{'mac':'0a:00:00:00:00:02'}}";
        Assert.Equal(1, From(rt + "," + args, "MAC=0a:00:00:00:00:03").Mac![5]);
        Assert.Equal(2, From(args, "MAC=0a:00:00:00:00:03").Mac![5]);
        Assert.Equal(3, From("", "MAC=0a:00:00:00:00:03").Mac![5]);
    }

    [Fact]
    public void Teardown_accepts_what_ADD_refuses()
    {
        var c = BridgeConfig.ForTeardown(Conf("'bridge':'a/b','mtu':1,'ipam':{},'hairpinMode':true,'promiscMode':true"));
        Assert.Equal("", c.BridgeName);
        Assert.Null(c.IpamType);
    }

    [Fact]
    public void The_ipam_plugin_is_embedded_or_delegated_by_type()
    {
        Assert.IsType<PodBridgeIpam>(From("'ipam':{'type':'podbridge-ipam'}").CreateIpam());
        Assert.IsType<DelegatedPlugin>(From("'ipam':{'type':'host-local'}").CreateIpam());
        Assert.Null(From("").CreateIpam());
    }
}
