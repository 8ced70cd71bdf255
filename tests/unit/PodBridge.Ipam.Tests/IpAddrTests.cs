using System.Net;

namespace PodBridge.Ipam.Tests;

public class IpAddrTests
{
    [Theory]
    [InlineData("10.1.0.5", false, "0a010005")]
    [InlineData("255.255.255.255", false, "ffffffff")]
    [InlineData("::ffff:10.1.0.5", false, "0a010005")]
    [InlineData("fd00::1", true, "fd000000000000000000000000000001")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true, "ffffffffffffffffffffffffffffffff")]
    public void Parses_to_fixed_width_hex(string text, bool v6, string hex)
    {
        Assert.True(IpAddr.TryParse(text, out var a));
        Assert.Equal(v6, a.IsV6);
        Assert.Equal(hex, a.ToHex());
        Assert.Equal(a, IpAddr.FromHex(hex, v6));
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.1")]
    [InlineData("10.1.0.256")]
    [InlineData("fe80::1%eth0")]
    [InlineData("010.1.0.5")]
    [InlineData("10.1.0.5 ")]
    [InlineData("[fd00::1]")]
    [InlineData("nope")]
    public void Rejects_what_is_not_a_plain_address(string text) => Assert.False(IpAddr.TryParse(text, out _));

    [Fact]
    public void Round_trips_through_IPAddress()
    {
        foreach (var s in new[] { "0.0.0.0", "10.1.2.3", "::", "2001:db8::8:800:200c:417a" })
            Assert.Equal(IPAddress.Parse(s), IpAddr.TryParse(s, out var a) ? a.ToIPAddress() : null);
    }

    [Fact]
    public void Hex_order_is_numeric_order()
    {
        var addrs = new[] { "10.0.0.9", "10.0.0.10", "10.0.1.0", "9.255.255.255" }
            .Select(s => IpAddr.TryParse(s, out var a) ? a : default).ToList();
        var byHex = addrs.OrderBy(a => a.ToHex(), StringComparer.Ordinal).ToList();
        var byValue = addrs.OrderBy(a => a).ToList();
        Assert.Equal(byValue, byHex);
    }

    [Theory]
    [InlineData(24, false, 0xffffff00u)]
    [InlineData(0, false, 0u)]
    [InlineData(32, false, 0xffffffffu)]
    public void V4_masks(int prefix, bool v6, uint expected) => Assert.Equal((UInt128)expected, IpAddr.Mask(prefix, v6));

    [Fact]
    public void V6_masks_use_all_128_bits()
    {
        Assert.Equal(new UInt128(ulong.MaxValue, 0), IpAddr.Mask(64, true));
        Assert.Equal(UInt128.MaxValue, IpAddr.Mask(128, true));
        Assert.Equal(new UInt128(0x8000_0000_0000_0000, 0), IpAddr.Mask(1, true));
    }

    [Fact]
    public void A_whole_slash_64_is_two_numbers()
    {
        var r = IpamSettings.ParseRange(new RangeConfig { Subnet = "fd00:1:2:3::/64" }, "t");
        Assert.Equal("fd00:1:2:3::1", r.Start.ToString());
        Assert.Equal("fd00:1:2:3:ffff:ffff:ffff:ffff", r.End.ToString());
        // 2^64 - 1 addresses after the network address, minus the gateway.
        Assert.Equal((UInt128)ulong.MaxValue - 1, r.Capacity);
    }

    [Fact]
    public void Cidr_parsing_keeps_host_bits_for_the_caller_to_judge()
    {
        Assert.True(IpAddr.TryParseCidr("10.1.0.5/16", out var a, out var p));
        Assert.Equal("10.1.0.5", a.ToString());
        Assert.Equal(16, p);
        Assert.False(IpAddr.TryParseCidr("10.1.0.0/33", out _, out _));
        Assert.False(IpAddr.TryParseCidr("10.1.0.0", out _, out _));
        Assert.True(IpAddr.TryParseCidr("fd00::/128", out _, out _));
    }
}
