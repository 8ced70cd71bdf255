using System.Net;
using System.Text.Json;
using PodBridge.Netlink;

namespace PodBridge.Netlink.Tests.Kernel;

/// <summary>
/// Links against the real kernel (root). The "host" side is a test namespace too: the bridge and the host veth
/// end live in <see cref="_hostNs"/>, the pod end in <see cref="_podNs"/>.
/// </summary>
public sealed class LinkTests : IDisposable
{
    private static readonly byte[] PodMac = [0x02, 0x42, 0xac, 0x11, 0x00, 0x07];

    private readonly TestNetns _hostNs = null!, _podNs = null!;
    private readonly RtNetlinkSocket _host = null!, _pod = null!;

    public LinkTests()
    {
        // xunit does not call Dispose when the constructor throws: clean up here what was made so far.
        try
        {
            _hostNs = new TestNetns();
            _podNs = new TestNetns();
            _host = RtNetlinkSocket.OpenIn(_hostNs.Handle);
            _pod = RtNetlinkSocket.OpenIn(_podNs.Handle);
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
    public void SocketOpenedInANamespace_SeesOnlyThatNamespace()
    {
        Assert.Equal(["lo"], _host.ListLinks().Select(l => l.Name));
    }

    [Fact]
    public void Bridge_IsCreatedWithItsMtu_AndDuplicateFailsWithEexist()
    {
        _host.CreateBridge("pbtbr0", 1400);

        var bridge = _host.GetLink("pbtbr0");
        Assert.NotNull(bridge);
        Assert.Equal("bridge", bridge.Kind);
        Assert.Equal(1400, bridge.Mtu);
        Assert.False(bridge.IsUp);
        Assert.Equal(6, bridge.Mac.Length);
        Assert.Equal(bridge, _host.GetLink(bridge.Index)! with { Mac = bridge.Mac }); // records compare byte[] by reference

        var ip = Single(_hostNs.Json("link", "show", "pbtbr0"));
        Assert.Equal(1400, ip.GetProperty("mtu").GetInt32());
        Assert.Equal(bridge.Index, ip.GetProperty("ifindex").GetInt32());
        Assert.Equal(bridge.MacString, ip.GetProperty("address").GetString());

        var error = Assert.Throws<NetlinkException>(() => _host.CreateBridge("pbtbr0", null));
        Assert.Equal(Errno.EEXIST, error.Errno);
        Assert.StartsWith("RTM_NEWLINK bridge pbtbr0: EEXIST (17)", error.Message);
    }

    [Fact]
    public void Veth_PeerIsCreatedDirectlyInThePodNamespace()
    {
        _host.CreateVeth("pbtveth0", "eth0", _podNs.Handle, 1450, PodMac);

        var hostEnd = _host.GetLink("pbtveth0");
        var podEnd = _pod.GetLink("eth0");
        Assert.NotNull(hostEnd);
        Assert.NotNull(podEnd);
        Assert.Null(_host.GetLink("eth0"));                 // never existed on the host side
        Assert.Equal("veth", hostEnd.Kind);
        Assert.Equal("veth", podEnd.Kind);
        Assert.Equal(1450, hostEnd.Mtu);
        Assert.Equal(1450, podEnd.Mtu);
        Assert.Equal(PodMac, podEnd.Mac);
        Assert.Equal(podEnd.Index, hostEnd.ParentIndex);     // IFLA_LINK points across namespaces
        Assert.Equal(hostEnd.Index, podEnd.ParentIndex);
        Assert.NotNull(hostEnd.LinkNetNsId);
        Assert.NotNull(podEnd.LinkNetNsId);

        var ip = Single(_podNs.Json("link", "show", "eth0"));
        Assert.Equal("02:42:ac:11:00:07", ip.GetProperty("address").GetString());
        Assert.Equal(1450, ip.GetProperty("mtu").GetInt32());
        Assert.Equal(hostEnd.Index, ip.GetProperty("link_index").GetInt32());
    }

    [Fact]
    public void Veth_WithTakenPeerName_FailsWithEexist_AndCreatesNothing()
    {
        _host.CreateVeth("pbtveth0", "eth0", _podNs.Handle, null, null);

        var error = Assert.Throws<NetlinkException>(() => _host.CreateVeth("pbtveth1", "eth0", _podNs.Handle, null, null));

        Assert.Equal(Errno.EEXIST, error.Errno);
        Assert.Contains("pbtveth1 (peer eth0)", error.Message);
        Assert.Null(_host.GetLink("pbtveth1"));
    }

    [Fact]
    public void Port_MasterUpHairpinMtuPromisc_AreAppliedAndReadBack()
    {
        _host.CreateBridge("pbtbr0", null);
        _host.CreateVeth("pbtveth0", "eth0", _podNs.Handle, null, null);
        var bridge = _host.GetLink("pbtbr0")!;
        var port = _host.GetLink("pbtveth0")!;

        _host.SetMaster(port.Index, bridge.Index);
        _host.SetBridgePortHairpin(port.Index, true);
        _host.SetMtu(port.Index, 1300);
        _host.SetLinkUp(port.Index);
        _host.SetLinkUp(bridge.Index);
        _host.SetPromisc(bridge.Index, true);

        var links = _host.ListLinks().ToDictionary(l => l.Name);
        Assert.Equal(["lo", "pbtbr0", "pbtveth0"], links.Keys.Order());
        Assert.Equal(bridge.Index, links["pbtveth0"].MasterIndex);
        Assert.Null(links["pbtbr0"].MasterIndex);
        Assert.True(links["pbtveth0"].IsUp);
        Assert.True(links["pbtbr0"].IsUp);
        Assert.True(links["pbtbr0"].Promisc);
        Assert.Equal(1300, links["pbtveth0"].Mtu);

        var ip = Single(_hostNs.Json("-d", "link", "show", "pbtveth0"));
        Assert.Equal("pbtbr0", ip.GetProperty("master").GetString());
        Assert.Equal(1300, ip.GetProperty("mtu").GetInt32());
        Assert.Contains("UP", Flags(ip));
        Assert.True(ip.GetProperty("linkinfo").GetProperty("info_slave_data").GetProperty("hairpin").GetBoolean());
        Assert.Contains("PROMISC", Flags(Single(_hostNs.Json("link", "show", "pbtbr0"))));

        _host.SetBridgePortHairpin(port.Index, false);
        _host.SetPromisc(bridge.Index, false);
        ip = Single(_hostNs.Json("-d", "link", "show", "pbtveth0"));
        Assert.False(ip.GetProperty("linkinfo").GetProperty("info_slave_data").GetProperty("hairpin").GetBoolean());
        Assert.False(_host.GetLink(bridge.Index)!.Promisc);
    }

    [Fact]
    public void Missing_Links_AreNullOrFalse_ButDeleteByIndexThrowsEnodev()
    {
        Assert.Null(_host.GetLink("pbtnope"));
        Assert.Null(_host.GetLink(999_999));
        Assert.False(_host.DeleteLink("pbtnope"));
        var error = Assert.Throws<NetlinkException>(() => _host.DeleteLink(999_999));
        Assert.Equal(Errno.ENODEV, error.Errno);
    }

    [Fact]
    public void DeletingTheHostEnd_RemovesThePodEndToo()
    {
        _host.CreateVeth("pbtveth0", "eth0", _podNs.Handle, null, null);

        Assert.True(_host.DeleteLink("pbtveth0"));

        Assert.Null(_host.GetLink("pbtveth0"));
        Assert.Null(_pod.GetLink("eth0"));
        Assert.Equal(0, _podNs.Json("link", "show").EnumerateArray().Count(l => l.GetProperty("ifname").GetString() == "eth0"));
    }

    [Fact]
    public void ListLinks_SpanningManyDatagrams_ReturnsEveryLink()
    {
        const int count = 100;
        var batch = string.Concat(Enumerable.Range(0, count).Select(i => $"link add pbtd{i} type bridge\n"));
        var (code, _, stderr) = Ip.Exec("ip", ["-n", _hostNs.Name, "-batch", "-"], batch);
        Assert.True(code == 0, stderr);

        var expected = _hostNs.Json("link", "show").EnumerateArray().Select(l => l.GetProperty("ifname").GetString()).Order().ToList();
        Assert.Equal(count + 1, expected.Count);
        Assert.Equal(expected, _host.ListLinks().Select(l => l.Name).Order());

        // A receive buffer far smaller than one datagram: every dump part arrives truncated at first.
        using var small = RtNetlinkSocket.OpenIn(_hostNs.Handle, receiveBufferSize: 512);
        Assert.Equal(expected, small.ListLinks().Select(l => l.Name).Order());
        Assert.True(small.ReceiveBufferSize > 512);
    }

    internal static JsonElement Single(JsonElement array) => Assert.Single(array.EnumerateArray().ToList());

    private static List<string?> Flags(JsonElement link) =>
        link.GetProperty("flags").EnumerateArray().Select(f => f.GetString()).ToList();
}
