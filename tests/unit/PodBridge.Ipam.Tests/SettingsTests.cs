using PodBridge.Cni;

namespace PodBridge.Ipam.Tests;

public class SettingsTests
{
    private static IpamSettings Parse(string ipam, string extra = "") => IpamSettings.From(H.Conf(ipam, extra));

    [Fact]
    public void V4_defaults_follow_host_local()
    {
        var s = Parse("""{"ranges":[[{"subnet":"10.1.0.0/24"}]]}""");
        var r = Assert.Single(Assert.Single(s.RangeSets).Ranges);
        Assert.Equal("10.1.0.1", r.Gateway.ToString());
        Assert.Equal("10.1.0.1", r.Start.ToString()); // the gateway is skipped when allocating, not excluded here
        Assert.Equal("10.1.0.254", r.End.ToString()); // broadcast - 1
        Assert.Equal((UInt128)253, r.Capacity);
        Assert.Equal(IpamSettings.DefaultDataDir, s.DataDir);
    }

    [Fact]
    public void V6_last_address_is_usable()
    {
        var r = Parse("""{"ranges":[[{"subnet":"fd00::/120"}]]}""").RangeSets[0].Ranges[0];
        Assert.Equal("fd00::1", r.Gateway.ToString());
        Assert.Equal("fd00::ff", r.End.ToString());
    }

    [Fact]
    public void Explicit_fields_are_kept()
    {
        var r = Parse("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.5.10","rangeEnd":"10.1.5.20","gateway":"10.1.255.254"}]],"dataDir":"/tmp/x"}""")
            .RangeSets[0].Ranges[0];
        Assert.Equal(("10.1.5.10", "10.1.5.20", "10.1.255.254"), (r.Start.ToString(), r.End.ToString(), r.Gateway.ToString()));
        Assert.Equal((UInt128)11, r.Capacity); // gateway outside the range: nothing subtracted
    }

    [Fact]
    public void Legacy_subnet_becomes_set_0_before_ranges()
    {
        var s = Parse("""{"subnet":"10.1.0.0/24","gateway":"10.1.0.254","ranges":[[{"subnet":"fd00::/64"}]]}""");
        Assert.Equal(2, s.RangeSets.Count);
        Assert.Equal("10.1.0.254", s.RangeSets[0].Ranges[0].Gateway.ToString());
        Assert.True(s.RangeSets[1].IsV6);
        Assert.Equal(1, s.RangeSets[1].Index);
    }

    [Fact]
    public void Runtime_ip_ranges_replace_the_configured_ones()
    {
        var s = Parse("""{"ranges":[[{"subnet":"10.1.0.0/24"}]]}""",
            ""","runtimeConfig":{"ipRanges":[[{"subnet":"10.7.0.0/24"}],[{"subnet":"fd07::/64"}]]}""");
        Assert.Equal(["10.7.0.0/24", "fd07::/64"], s.RangeSets.Select(x => x.Ranges[0].Subnet));
    }

    [Fact]
    public void Routes_and_resolv_conf()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "nameserver 10.0.0.10\nsearch a.svc b.svc\n");
        try
        {
            var s = Parse($$"""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"},{"dst":"10.9.0.0/16","gw":"10.1.0.5"}],"resolvConf":"{{path}}"}""");
            Assert.Equal(["0.0.0.0/0", "10.9.0.0/16"], s.Routes.Select(r => r.Dst.ToString()));
            Assert.Null(s.Routes[0].Gw);
            Assert.Equal("10.1.0.5", s.Routes[1].Gw!.ToString());
            Assert.Equal(["10.0.0.10"], s.Dns.Nameservers);
            Assert.Equal(["a.svc", "b.svc"], s.Dns.Search);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Release_settings_ignore_broken_ranges()
    {
        // DEL must still work after someone broke the ranges in the config.
        var s = IpamSettings.ForRelease(H.Conf("""{"ranges":[[{"subnet":"bogus"}]],"dataDir":"/tmp/d"}"""));
        Assert.Equal("/tmp/d", s.DataDir);
        Assert.Equal(H.Net, s.Network);
    }

    [Theory]
    [InlineData("""{"ranges":[]}""", "", "ipam.ranges: no address ranges configured")]
    [InlineData("""{"type":"podbridge-ipam"}""", "", "ipam.ranges: no address ranges configured")]
    [InlineData("""{"ranges":[[]]}""", "", "ipam.ranges[0]: the range set is empty")]
    [InlineData("""{"ranges":[[{"gateway":"10.1.0.1"}]]}""", "", "ipam.ranges[0][0].subnet: missing")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0"}]]}""", "", "ipam.ranges[0][0].subnet: '10.1.0.0' is not a subnet in CIDR form")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/33"}]]}""", "", "ipam.ranges[0][0].subnet: '10.1.0.0/33' is not a subnet")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.5/16"}]]}""", "", "ipam.ranges[0][0].subnet: 10.1.0.5/16 has host bits set; the network address is 10.1.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/31"}]]}""", "", "ipam.ranges[0][0].subnet: 10.1.0.0/31 is too small")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/32"}]]}""", "", "ipam.ranges[0][0].subnet: 10.1.0.0/32 is too small")]
    [InlineData("""{"ranges":[[{"subnet":"fd00::/127"}]]}""", "", "ipam.ranges[0][0].subnet: fd00::/127 is too small")]
    [InlineData("""{"ranges":[[{"subnet":"fd00::/128"}]]}""", "", "ipam.ranges[0][0].subnet: fd00::/128 is too small")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16"},{"subnet":"10.3.0.0/16","rangeStart":"10.2.0.5"}]]}""", "", "ipam.ranges[0][1].rangeStart: 10.2.0.5 is outside subnet 10.3.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeEnd":"10.2.0.5"}]]}""", "", "ipam.ranges[0][0].rangeEnd: 10.2.0.5 is outside subnet 10.1.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"fd00::5"}]]}""", "", "ipam.ranges[0][0].rangeStart: fd00::5 is outside subnet 10.1.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"x"}]]}""", "", "ipam.ranges[0][0].rangeStart: 'x' is not an IP address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.0.0"}]]}""", "", "ipam.ranges[0][0].rangeStart: 10.1.0.0 is the network address of 10.1.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeEnd":"10.1.255.255"}]]}""", "", "ipam.ranges[0][0].rangeEnd: 10.1.255.255 is the broadcast address of 10.1.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.0.9","rangeEnd":"10.1.0.8"}]]}""", "", "ipam.ranges[0][0].rangeStart: 10.1.0.9 is after rangeEnd 10.1.0.8")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","gateway":"10.2.0.1"}]]}""", "", "ipam.ranges[0][0].gateway: 10.2.0.1 is outside subnet 10.1.0.0/16")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","gateway":"10.1.0.0"}]]}""", "", "ipam.ranges[0][0].gateway: 10.1.0.0 is the network address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","gateway":"gw"}]]}""", "", "ipam.ranges[0][0].gateway: 'gw' is not an IP address")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16","rangeStart":"10.1.0.1","rangeEnd":"10.1.0.1"}]]}""", "", "ipam.ranges[0][0]: the range 10.1.0.1-10.1.0.1 holds only the gateway")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/16"},{"subnet":"fd00::/64"}]]}""", "", "ipam.ranges[0][1].subnet: fd00::/64 is IPv6 but ipam.ranges[0][0] is IPv4")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"},{"subnet":"10.1.0.0/16","rangeStart":"10.1.0.200","rangeEnd":"10.1.1.5"}]]}""", "", "ipam.ranges[0][1]: 10.1.0.200-10.1.1.5 overlaps ipam.ranges[0][0] (10.1.0.1-10.1.0.254)")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}],[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.100"}]]}""", "", "ipam.ranges[1][0]: 10.1.0.100-10.1.0.254 overlaps ipam.ranges[0][0] (10.1.0.1-10.1.0.254) of another range set")]
    [InlineData("""{"subnet":"10.1.0.0/24","rangeStart":"10.9.0.1"}""", "", "ipam.rangeStart: 10.9.0.1 is outside subnet 10.1.0.0/24")]
    [InlineData("""{"rangeStart":"10.9.0.1"}""", "", "ipam.subnet: missing, but ipam.rangeStart/rangeEnd/gateway are set")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]]}""", ""","runtimeConfig":{"ipRanges":[[{"subnet":"10.7.0.0/33"}]]}""", "runtimeConfig.ipRanges[0][0].subnet: '10.7.0.0/33'")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"dst":"0.0.0.0"}]}""", "", "ipam.routes[0].dst: '0.0.0.0' is not in CIDR form")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0","gw":"fd00::1"}]}""", "", "ipam.routes[0].gw: fd00::1 is not in the family of dst")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"dataDir":"relative/dir"}""", "", "ipam.dataDir: 'relative/dir' must be an absolute path")]
    [InlineData("""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"resolvConf":"/nonexistent/resolv.conf"}""", "", "ipam.resolvConf: cannot read /nonexistent/resolv.conf")]
    public void Invalid_config_is_code_7_naming_the_field(string ipam, string extra, string message)
    {
        var e = H.Throws(CniErrorCode.InvalidNetworkConfig, () => Parse(ipam, extra));
        Assert.StartsWith(message, e.Message);
    }

    [Fact]
    public void No_ipam_section_is_code_7()
    {
        var conf = NetConf.Parse("""{"cniVersion":"1.1.0","name":"n","type":"podbridge"}"""u8.ToArray());
        Assert.Contains("no ipam section", H.Throws(CniErrorCode.InvalidNetworkConfig, () => IpamSettings.From(conf)).Message);
    }

    [Fact]
    public void Resolv_conf_parsing()
    {
        var dns = ResolvConf.Parse("""
            # comment
            ; another comment
            nameserver 10.0.0.10
            nameserver   fd00::10
            domain cluster.local
            search old.example
            search default.svc.cluster.local svc.cluster.local
            options ndots:5
            options timeout:1 attempts:2
            bogus
            """);
        Assert.Equal(["10.0.0.10", "fd00::10"], dns.Nameservers);
        Assert.Equal("cluster.local", dns.Domain);
        Assert.Equal(["default.svc.cluster.local", "svc.cluster.local"], dns.Search);
        Assert.Equal(["ndots:5", "timeout:1", "attempts:2"], dns.Options);
    }
}
