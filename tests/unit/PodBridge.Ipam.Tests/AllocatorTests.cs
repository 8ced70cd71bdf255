using PodBridge.Cni;

namespace PodBridge.Ipam.Tests;

public class AllocatorTests
{
    // 10.1.0.0/29: gateway .1, usable .2-.6 (5 addresses)
    private static readonly NetConf Small = H.Ranges("""[[{"subnet":"10.1.0.0/29"}]]""");

    [Fact]
    public void First_address_skips_the_gateway_and_result_has_gateway_and_no_interface()
    {
        var (ipam, _, _) = H.InMemory();
        var r = ipam.Add(H.Req("c1"), Small);
        var ip = Assert.Single(r.Ips);
        Assert.Equal("10.1.0.2/29", ip.Address.ToString());
        Assert.Equal("10.1.0.1", ip.Gateway!.ToString());
        Assert.Null(ip.Interface);
    }

    [Fact]
    public void Round_robin_does_not_reuse_a_released_address_until_wrap()
    {
        var (ipam, _, _) = H.InMemory();
        Assert.Equal("10.1.0.2", ipam.Add(H.Req("c1"), Small).Addr());
        Assert.Equal("10.1.0.3", ipam.Add(H.Req("c2"), Small).Addr());
        ipam.Del(H.Req("c1"), Small);
        Assert.Equal("10.1.0.4", ipam.Add(H.Req("c3"), Small).Addr());
        Assert.Equal("10.1.0.5", ipam.Add(H.Req("c4"), Small).Addr());
        Assert.Equal("10.1.0.6", ipam.Add(H.Req("c5"), Small).Addr());
        // wrap: .2 was released, .3 is still held
        Assert.Equal("10.1.0.2", ipam.Add(H.Req("c6"), Small).Addr());
    }

    [Fact]
    public void Exhaustion_is_code_102_naming_the_range_set_and_changes_nothing()
    {
        var (ipam, store, _) = H.InMemory();
        for (var i = 0; i < 5; i++) ipam.Add(H.Req($"c{i}"), Small);
        var commits = store.Commits;
        var e = H.Throws(CniErrorCode.RangeExhausted, () => ipam.Add(H.Req("late"), Small));
        Assert.Contains("range set 0 (10.1.0.0/29", e.Message);
        Assert.Equal(5, store.Snapshot().Count);
        Assert.Equal(commits, store.Commits);
    }

    [Fact]
    public void A_set_of_several_ranges_continues_into_the_next_range_and_wraps_to_the_first()
    {
        var conf = H.Ranges("""[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.10","rangeEnd":"10.1.0.11"},{"subnet":"10.2.0.0/24","rangeStart":"10.2.0.20","rangeEnd":"10.2.0.20"}]]""");
        var (ipam, _, _) = H.InMemory();
        Assert.Equal("10.1.0.10", ipam.Add(H.Req("a"), conf).Addr());
        Assert.Equal("10.1.0.11", ipam.Add(H.Req("b"), conf).Addr());
        var c = ipam.Add(H.Req("c"), conf);
        Assert.Equal("10.2.0.20/24", c.Ips[0].Address.ToString());
        Assert.Equal("10.2.0.1", c.Ips[0].Gateway!.ToString());
        ipam.Del(H.Req("a"), conf);
        Assert.Equal("10.1.0.10", ipam.Add(H.Req("d"), conf).Addr());
    }

    [Fact]
    public void Gateway_inside_the_range_is_never_handed_out()
    {
        var conf = H.Ranges("""[[{"subnet":"10.1.0.0/24","rangeStart":"10.1.0.5","rangeEnd":"10.1.0.7","gateway":"10.1.0.6"}]]""");
        var (ipam, _, _) = H.InMemory();
        Assert.Equal("10.1.0.5", ipam.Add(H.Req("a"), conf).Addr());
        Assert.Equal("10.1.0.7", ipam.Add(H.Req("b"), conf).Addr());
        H.Throws(CniErrorCode.RangeExhausted, () => ipam.Add(H.Req("c"), conf));
    }

    [Fact]
    public void Dual_stack_takes_one_address_per_set()
    {
        var conf = H.Ranges("""[[{"subnet":"10.1.0.0/24"}],[{"subnet":"fd00:1::/64"}]]""");
        var (ipam, store, _) = H.InMemory();
        var r = ipam.Add(H.Req("c1"), conf);
        Assert.Equal(["10.1.0.2/24", "fd00:1::2/64"], r.Ips.Select(i => i.Address.ToString()));
        Assert.Equal(["10.1.0.1", "fd00:1::1"], r.Ips.Select(i => i.Gateway!.ToString()));
        Assert.Equal([0, 1], store.Snapshot().OrderBy(l => l.RangeSet).Select(l => l.RangeSet));
    }

    [Fact]
    public void Routes_and_dns_come_from_the_ipam_section()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, "nameserver 10.0.0.10\ndomain example\n");
        try
        {
            var conf = H.Conf($$"""{"ranges":[[{"subnet":"10.1.0.0/24"}]],"routes":[{"dst":"0.0.0.0/0"}],"resolvConf":"{{path}}"}""");
            var r = H.InMemory().Ipam.Add(H.Req("c1"), conf);
            Assert.Equal("0.0.0.0/0", Assert.Single(r.Routes).Dst.ToString());
            Assert.Equal(["10.0.0.10"], r.Dns.Nameservers);
            Assert.Equal("example", r.Dns.Domain);
            Assert.Empty(r.Interfaces);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void A_slash_64_wraps_at_its_last_address_without_enumerating()
    {
        // The last range ends at ffff:...:ffff, the family's maximum: stepping past it must not wrap to ::.
        var conf = H.Ranges("""[[{"subnet":"ffff:ffff:ffff:ffff::/64","rangeStart":"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd"}]]""");
        var (ipam, _, _) = H.InMemory();
        Assert.Equal("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd", ipam.Add(H.Req("a"), conf).Addr());
        Assert.Equal("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", ipam.Add(H.Req("b"), conf).Addr());
        Assert.Equal("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", ipam.Add(H.Req("c"), conf).Addr());
        H.Throws(CniErrorCode.RangeExhausted, () => ipam.Add(H.Req("d"), conf));
        ipam.Del(H.Req("a"), conf);
        Assert.Equal("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd", ipam.Add(H.Req("e"), conf).Addr());
    }

    [Fact]
    public void A_whole_slash_64_allocates_from_a_cursor_far_into_the_range()
    {
        var conf = H.Ranges("""[[{"subnet":"fd00::/64"}]]""");
        var (ipam, store, _) = H.InMemory();
        using (var tx = store.Begin())
        {
            // Pretend 2^63 addresses were handed out: allocation continues right after, no enumeration.
            IpAddr.TryParse("fd00::8000:0:0:0", out var far);
            tx.SetCursor(H.Net, 0, far);
            tx.Commit();
        }
        Assert.Equal("fd00::8000:0:0:1", ipam.Add(H.Req("a"), conf).Addr());
    }

    [Fact]
    public void Cursor_outside_the_current_ranges_restarts_at_the_first_range()
    {
        var (ipam, store, _) = H.InMemory();
        using (var tx = store.Begin())
        {
            IpAddr.TryParse("192.168.0.9", out var stale);
            tx.SetCursor(H.Net, 0, stale);
            tx.Commit();
        }
        Assert.Equal("10.1.0.2", ipam.Add(H.Req("a"), Small).Addr());
    }

    [Fact]
    public void Networks_are_independent()
    {
        var (ipam, _, _) = H.InMemory();
        var other = H.Conf("""{"ranges":[[{"subnet":"10.1.0.0/29"}]]}""", name: "net2");
        Assert.Equal("10.1.0.2", ipam.Add(H.Req("a"), Small).Addr());
        Assert.Equal("10.1.0.2", ipam.Add(H.Req("a"), other).Addr());
        ipam.Del(H.Req("a"), other);
        H.Throws(CniErrorCode.DuplicateAllocation, () => ipam.Add(H.Req("a"), Small));
    }

    [Fact]
    public void First_gap_walk_stops_at_the_first_hole()
    {
        var store = new InMemoryLeaseStore();
        var range = IpamSettings.ParseRange(new RangeConfig { Subnet = "10.1.0.0/24" }, "t");
        using var tx = store.Begin();
        foreach (var a in new[] { "10.1.0.2", "10.1.0.3", "10.1.0.5" })
        {
            IpAddr.TryParse(a, out var ip);
            Assert.True(tx.TryReserve(new Lease(H.Net, ip, 0, a, "eth0")));
        }
        var alloc = new RangeAllocator(tx, H.Net);
        Assert.Equal("10.1.0.4", alloc.FirstGap(range, range.Start, range.End).ToString());
        Assert.Equal("10.1.0.6", alloc.FirstGap(range, range.Start.Add(4), range.End).ToString());
        Assert.Null(alloc.FirstGap(range, range.Start.Add(1), range.Start.Add(2)));
    }
}
