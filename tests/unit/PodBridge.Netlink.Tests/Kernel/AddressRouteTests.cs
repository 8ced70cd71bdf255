using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using PodBridge.Netlink;

namespace PodBridge.Netlink.Tests.Kernel;

/// <summary>Addresses and routes on the pod end of a veth, all inside test namespaces.</summary>
public sealed class AddressRouteTests : IDisposable
{
    private static readonly IPAddress PodV4 = IPAddress.Parse("10.244.1.5");
    private static readonly IPAddress GatewayV4 = IPAddress.Parse("10.244.1.1");
    private static readonly IPAddress PodV6 = IPAddress.Parse("fd00:244::5");
    private static readonly IPAddress GatewayV6 = IPAddress.Parse("fd00:244::1");

    private readonly TestNetns _hostNs = null!, _podNs = null!;
    private readonly RtNetlinkSocket _host = null!, _pod = null!;
    private readonly int _eth0;

    public AddressRouteTests()
    {
        // xunit does not call Dispose when the constructor throws: clean up here what was made so far.
        try
        {
            _hostNs = new TestNetns();
            _podNs = new TestNetns();
            _host = RtNetlinkSocket.OpenIn(_hostNs.Handle);
            _pod = RtNetlinkSocket.OpenIn(_podNs.Handle);
            _host.CreateVeth("pbtveth0", "eth0", _podNs.Handle, null, null);
            _host.SetLinkUp(_host.GetLink("pbtveth0")!.Index);
            _eth0 = _pod.GetLink("eth0")!.Index;
            _pod.SetLinkUp(_eth0);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _host?.Dispose();
        _pod?.Dispose();
        _podNs?.Dispose();
        _hostNs?.Dispose();
    }

    [Fact]
    public void Addresses_AreAddedListedAndCrossCheckedWithIp()
    {
        _pod.AddAddress(_eth0, PodV4, 24, noDad: false);
        _pod.AddAddress(_eth0, PodV6, 64, noDad: true);

        var listed = _pod.ListAddresses(_eth0);
        var v4 = Assert.Single(listed, a => a.Address.Equals(PodV4));
        var v6 = Assert.Single(listed, a => a.Address.Equals(PodV6));
        Assert.Equal((_eth0, 24, (byte)0), (v4.Index, v4.PrefixLength, v4.Scope));
        Assert.Equal((_eth0, 64), (v6.Index, v6.PrefixLength));
        Assert.NotEqual(0u, v6.Flags & 0x02);              // IFA_F_NODAD
        Assert.Equal(0u, v6.Flags & 0x40);                 // not IFA_F_TENTATIVE: usable at once
        Assert.All(listed, a => Assert.Equal(_eth0, a.Index));

        Assert.DoesNotContain(_pod.ListAddresses(_eth0, AddressFamily.InterNetwork), a => a.Address.AddressFamily != AddressFamily.InterNetwork);
        Assert.Contains(_pod.ListAddresses(family: AddressFamily.InterNetwork), a => a.Address.Equals(PodV4)); // no index: whole namespace

        var info = LinkTests.Single(_podNs.Json("addr", "show", "dev", "eth0")).GetProperty("addr_info").EnumerateArray().ToList();
        var ip4 = Assert.Single(info, a => a.GetProperty("local").GetString() == "10.244.1.5");
        Assert.Equal(24, ip4.GetProperty("prefixlen").GetInt32());
        Assert.Equal("10.244.1.255", ip4.GetProperty("broadcast").GetString());
        var ip6 = Assert.Single(info, a => a.GetProperty("local").GetString() == "fd00:244::5");
        Assert.True(ip6.GetProperty("nodad").GetBoolean());
    }

    [Theory]
    [InlineData("10.244.1.5", 24, "ipv4: Address already assigned")]
    [InlineData("fd00:244::5", 64, "ipv6: address already assigned")]
    public void DuplicateAddress_FailsWithEexistAndTheKernelsText(string address, int prefix, string kernelText)
    {
        var ip = IPAddress.Parse(address);
        _pod.AddAddress(_eth0, ip, prefix, noDad: true);

        var error = Assert.Throws<NetlinkException>(() => _pod.AddAddress(_eth0, ip, prefix, noDad: true));

        Assert.Equal(Errno.EEXIST, error.Errno);
        Assert.Equal(kernelText, error.KernelMessage, ignoreCase: true);
        Assert.Equal($"RTM_NEWADDR {address}/{prefix} on ifindex {_eth0}: EEXIST (17): {error.KernelMessage}", error.Message);
    }

    [Fact]
    public void DeleteAddress_RemovesOnlyThatAddress()
    {
        _pod.AddAddress(_eth0, PodV4, 24, noDad: false);
        _pod.AddAddress(_eth0, IPAddress.Parse("10.244.2.5"), 24, noDad: false);

        _pod.DeleteAddress(_eth0, PodV4, 24);

        Assert.Equal([IPAddress.Parse("10.244.2.5")], _pod.ListAddresses(_eth0, AddressFamily.InterNetwork).Select(a => a.Address));
        var info = LinkTests.Single(_podNs.Json("-4", "addr", "show", "dev", "eth0")).GetProperty("addr_info");
        Assert.Equal(["10.244.2.5"], info.EnumerateArray().Select(a => a.GetProperty("local").GetString()));
        Assert.Equal(Errno.EADDRNOTAVAIL, Assert.Throws<NetlinkException>(() => _pod.DeleteAddress(_eth0, PodV4, 24)).Errno);
    }

    [Fact]
    public void Routes_AreAddedToMainWithProtocolBoot_AndCrossCheckedWithIp()
    {
        _pod.AddAddress(_eth0, PodV4, 24, noDad: false);
        _pod.AddAddress(_eth0, PodV6, 64, noDad: true);

        _pod.AddRoute(new RouteSpec(IPAddress.Any, 0, GatewayV4, _eth0));
        _pod.AddRoute(new RouteSpec(IPAddress.Parse("10.96.0.0"), 12, null, _eth0, Scope: 253));
        _pod.AddRoute(new RouteSpec(IPAddress.IPv6Any, 0, GatewayV6, _eth0));
        _pod.AddRoute(new RouteSpec(IPAddress.Parse("fd00:96::"), 108, GatewayV6, _eth0));

        var v4 = _pod.ListRoutes(AddressFamily.InterNetwork);
        Assert.Contains(new RouteInfo(IPAddress.Any, 0, GatewayV4, _eth0, 0, 254, 3), v4);
        Assert.Contains(new RouteInfo(IPAddress.Parse("10.96.0.0"), 12, null, _eth0, 253, 254, 3), v4);
        Assert.Contains(new RouteInfo(IPAddress.Parse("10.244.1.0"), 24, null, _eth0, 253, 254, 2), v4); // the kernel's own
        Assert.All(v4, r => Assert.Equal(254, r.Table));   // no local-table routes (127.0.0.0/8, broadcast)
        var v6 = _pod.ListRoutes(AddressFamily.InterNetworkV6);
        Assert.Contains(new RouteInfo(IPAddress.IPv6Any, 0, GatewayV6, _eth0, 0, 254, 3), v6);
        Assert.Contains(new RouteInfo(IPAddress.Parse("fd00:96::"), 108, GatewayV6, _eth0, 0, 254, 3), v6);
        Assert.All(v6, r => Assert.Equal(AddressFamily.InterNetworkV6, r.Destination.AddressFamily));

        var ip4 = _podNs.Json("route", "show").EnumerateArray().ToList();
        var defaultRoute = Assert.Single(ip4, r => r.GetProperty("dst").GetString() == "default");
        Assert.Equal("10.244.1.1", defaultRoute.GetProperty("gateway").GetString());
        Assert.False(defaultRoute.TryGetProperty("protocol", out _)); // iproute2 prints no protocol for boot
        var service = Assert.Single(ip4, r => r.GetProperty("dst").GetString() == "10.96.0.0/12");
        Assert.Equal("link", service.GetProperty("scope").GetString());
        Assert.Equal("eth0", service.GetProperty("dev").GetString());
        var ip6 = _podNs.Json("-6", "route", "show").EnumerateArray().ToList();
        Assert.Equal("fd00:244::1", Assert.Single(ip6, r => r.GetProperty("dst").GetString() == "default").GetProperty("gateway").GetString());
        Assert.Equal("fd00:244::1", Assert.Single(ip6, r => r.GetProperty("dst").GetString() == "fd00:96::/108").GetProperty("gateway").GetString());
    }

    [Fact]
    public void Routes_of_an_owner_protocol_are_replaced_and_deleted_without_touching_another_owners_route()
    {
        _pod.AddAddress(_eth0, PodV4, 24, noDad: false);
        var mine = new RouteSpec(IPAddress.Parse("10.250.0.0"), 24, IPAddress.Parse("10.244.1.7"), 0, Protocol: 147);
        _pod.AddRoute(mine); // no OutIndex: the kernel picks eth0, where the gateway is
        _pod.AddRoute(new RouteSpec(IPAddress.Parse("10.251.0.0"), 24, IPAddress.Parse("10.244.1.8"), _eth0)); // boot

        _pod.ReplaceRoute(mine with { Gateway = IPAddress.Parse("10.244.1.9") });
        var routes = _pod.ListRoutes(AddressFamily.InterNetwork);
        Assert.Contains(new RouteInfo(IPAddress.Parse("10.250.0.0"), 24, IPAddress.Parse("10.244.1.9"), _eth0, 0, 254, 147), routes);
        Assert.Equal("10.244.1.9", Assert.Single(_podNs.Json("route", "show", "proto", "147").EnumerateArray()).GetProperty("gateway").GetString());

        // A delete naming our protocol does not hit the boot route to the same kind of prefix, nor a missing one.
        Assert.False(_pod.DeleteRoute(new RouteSpec(IPAddress.Parse("10.251.0.0"), 24, null, 0, Protocol: 147)));
        Assert.True(_pod.DeleteRoute(new RouteSpec(IPAddress.Parse("10.250.0.0"), 24, null, 0, Protocol: 147)));
        Assert.False(_pod.DeleteRoute(new RouteSpec(IPAddress.Parse("10.250.0.0"), 24, null, 0, Protocol: 147)));
        routes = _pod.ListRoutes(AddressFamily.InterNetwork);
        Assert.DoesNotContain(routes, r => r.Protocol == 147);
        Assert.Contains(routes, r => r.Destination.Equals(IPAddress.Parse("10.251.0.0")) && r.Protocol == 3);
    }

    [Fact]
    public void DuplicateRoute_FailsWithEexist()
    {
        var route = new RouteSpec(IPAddress.Parse("10.96.0.0"), 12, null, _eth0, Scope: 253);
        _pod.AddRoute(route);

        var error = Assert.Throws<NetlinkException>(() => _pod.AddRoute(route));

        Assert.Equal(Errno.EEXIST, error.Errno);
        Assert.StartsWith($"RTM_NEWROUTE 10.96.0.0/12 dev ifindex {_eth0}: EEXIST (17)", error.Message);
    }

    [Fact]
    public void RouteWithHostBits_IsRejectedByTheKernelWithItsExplanation()
    {
        var error = Assert.Throws<NetlinkException>(() => _pod.AddRoute(new RouteSpec(IPAddress.Parse("10.96.1.1"), 12, null, _eth0, Scope: 253)));

        Assert.Equal(Errno.EINVAL, error.Errno);
        Assert.Equal("Invalid prefix for given prefix length", error.KernelMessage);
    }

    [Fact]
    public void RouteViaUnreachableGateway_FailsWithTheKernelsText()
    {
        var error = Assert.Throws<NetlinkException>(() =>
            _pod.AddRoute(new RouteSpec(IPAddress.Any, 0, IPAddress.Parse("192.0.2.1"), _eth0)));

        Assert.Equal(Errno.ENETUNREACH, error.Errno);
        Assert.NotNull(error.KernelMessage);
        Assert.EndsWith(error.KernelMessage, error.Message);
    }
}
