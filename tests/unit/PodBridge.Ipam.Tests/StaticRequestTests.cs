using PodBridge.Cni;

namespace PodBridge.Ipam.Tests;

public class StaticRequestTests
{
    private static readonly NetConf Dual = H.Ranges("""[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]]""");

    [Fact]
    public void Cni_args_ip_picks_the_address_and_leaves_the_cursor_alone()
    {
        var (ipam, _, _) = H.InMemory();
        Assert.Equal("10.1.0.50", ipam.Add(H.Req("a", args: "IP=10.1.0.50"), Dual).Addr());
        // the v6 set had no request: dynamic (a got fd00::2)
        Assert.Equal("fd00::3", ipam.Add(H.Req("b", args: "IP=10.1.0.51"), Dual).Addr(1));
        Assert.Equal("10.1.0.2", ipam.Add(H.Req("c"), Dual).Addr());
    }

    [Fact]
    public void Comma_separated_cni_args_cover_both_families()
    {
        var r = H.InMemory().Ipam.Add(H.Req("a", args: "IgnoreUnknown=1;IP=10.1.0.7,fd00::7"), Dual);
        Assert.Equal(["10.1.0.7/24", "fd00::7/64"], r.Ips.Select(i => i.Address.ToString()));
    }

    [Fact]
    public void Args_cni_ips_and_runtime_config_ips_accept_cidr_or_bare_addresses()
    {
        var (ipam, _, _) = H.InMemory();
        var viaArgs = H.Ranges("""[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]]""", ""","args":{"cni":{"ips":["10.1.0.9/24"]}}""");
        Assert.Equal("10.1.0.9/24", ipam.Add(H.Req("a"), viaArgs).Ips[0].Address.ToString());
        var viaRuntime = H.Ranges("""[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00::/64"}]]""", ""","runtimeConfig":{"ips":["fd00::99"]}""");
        Assert.Equal("fd00::99/64", ipam.Add(H.Req("b"), viaRuntime).Ips[1].Address.ToString());
    }

    [Fact]
    public void The_same_address_from_two_sources_counts_once()
    {
        var conf = H.Ranges("""[[{"subnet":"10.1.0.0/24"}]]""", ""","runtimeConfig":{"ips":["10.1.0.9/24"]}""");
        Assert.Equal("10.1.0.9", H.InMemory().Ipam.Add(H.Req("a", args: "IP=10.1.0.9"), conf).Addr());
    }

    [Theory]
    [InlineData("IP=10.1.0.1", "requested address 10.1.0.1 is the gateway of 10.1.0.0/24")]
    [InlineData("IP=10.9.0.1", "requested address 10.9.0.1 is outside every range")]
    [InlineData("IP=10.1.0.0", "requested address 10.1.0.0 is outside every range")]
    [InlineData("IP=10.1.0.5,10.1.0.6", "requested addresses 10.1.0.5 and 10.1.0.6 are both in range set 0")]
    public void Unavailable_requests_are_code_103_naming_the_address(string args, string message)
    {
        var (ipam, store, _) = H.InMemory();
        var e = H.Throws(CniErrorCode.AddressUnavailable, () => ipam.Add(H.Req("a", args: args), Dual));
        Assert.StartsWith(message, e.Message);
        Assert.Empty(store.Snapshot());
    }

    [Fact]
    public void A_taken_address_is_103_naming_it_and_its_holder()
    {
        var (ipam, _, _) = H.InMemory();
        ipam.Add(H.Req("a", args: "IgnoreUnknown=1;IP=10.1.0.5;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web"), Dual);
        var e = H.Throws(CniErrorCode.AddressUnavailable, () => ipam.Add(H.Req("b", args: "IP=10.1.0.5"), Dual));
        Assert.Contains("10.1.0.5 is taken", e.Message);
        Assert.Contains("a/eth0 (pod ns/web)", e.Message);
    }

    [Fact]
    public void A_failing_request_rolls_back_everything_the_add_reserved()
    {
        var (ipam, store, _) = H.InMemory();
        ipam.Add(H.Req("holder", args: "IP=fd00::5"), Dual);
        var before = store.Snapshot();
        // set 0 is reserved first (10.1.0.7), then set 1 fails: 10.1.0.7 must not stay leased
        H.Throws(CniErrorCode.AddressUnavailable, () => ipam.Add(H.Req("b", args: "IP=10.1.0.7,fd00::5"), Dual));
        Assert.Equal(before, store.Snapshot());
        // same for a dynamic v4 allocation (10.1.0.3; "holder" has .2) followed by a failing v6 request:
        // the lease and the cursor move are both rolled back, so the next ADD gets .3 again
        H.Throws(CniErrorCode.AddressUnavailable, () => ipam.Add(H.Req("c", args: "IP=fd00::5"), Dual));
        Assert.Equal("10.1.0.3", ipam.Add(H.Req("d"), Dual).Addr());
    }

    [Fact]
    public void Unparsable_requests_name_their_source()
    {
        var (ipam, _, _) = H.InMemory();
        Assert.Contains("CNI_ARGS IP: 'x' is not an IP address",
            H.Throws(CniErrorCode.InvalidEnvironmentVariables, () => ipam.Add(H.Req("a", args: "IP=x"), Dual)).Message);
        var conf = H.Ranges("""[[{"subnet":"10.1.0.0/24"}]]""", ""","runtimeConfig":{"ips":["10.1.0.1/99"]}""");
        Assert.Contains("runtimeConfig.ips[0]",
            H.Throws(CniErrorCode.InvalidNetworkConfig, () => ipam.Add(H.Req("a"), conf)).Message);
    }

    [Fact]
    public void An_address_held_by_a_dead_attachment_is_reclaimed_for_the_request()
    {
        var (ipam, store, probe) = H.InMemory();
        ipam.Add(H.Req("old", args: "IP=10.1.0.5"), Dual);
        probe.Gone.Add("/run/netns/old");
        Assert.Equal("10.1.0.5", ipam.Add(H.Req("new", args: "IP=10.1.0.5"), Dual).Addr());
        // both of the dead attachment's leases went, not only the requested one
        Assert.DoesNotContain(store.Snapshot(), l => l.ContainerId == "old");
    }
}
