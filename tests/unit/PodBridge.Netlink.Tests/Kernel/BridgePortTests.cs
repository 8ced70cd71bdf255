using PodBridge.Netlink;

namespace PodBridge.Netlink.Tests.Kernel;

/// <summary>Bridge port options against the real kernel, in namespaces of the test's own.</summary>
public sealed class BridgePortTests : IDisposable
{
    private readonly TestNetns _hostNs = null!, _podNs = null!;
    private readonly RtNetlinkSocket _host = null!;

    public BridgePortTests()
    {
        try
        {
            _hostNs = new TestNetns();
            _podNs = new TestNetns();
            _host = RtNetlinkSocket.OpenIn(_hostNs.Handle);
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
        _podNs?.Dispose();
        _hostNs?.Dispose();
    }

    [Fact]
    public void Isolation_and_hairpin_are_set_and_read_back_from_the_ports_slave_data()
    {
        _host.CreateBridge("pbtbr0", null);
        var bridge = _host.GetLink("pbtbr0")!;
        _host.CreateVeth("pbtveth0", "eth0", _podNs.Handle, null, null);
        var port = _host.GetLink("pbtveth0")!;
        Assert.Null(port.BridgePort); // not a port yet

        _host.SetMaster(port.Index, bridge.Index);
        Assert.Equal(new BridgePortInfo(Hairpin: false, Isolated: false), _host.GetLink(port.Index)!.BridgePort);

        _host.SetBridgePortIsolated(port.Index, true);
        Assert.Equal(new BridgePortInfo(Hairpin: false, Isolated: true), _host.GetLink(port.Index)!.BridgePort);
        _host.SetBridgePortHairpin(port.Index, true);
        Assert.Equal(new BridgePortInfo(Hairpin: true, Isolated: true), _host.GetLink(port.Index)!.BridgePort);
        // ip's own view agrees (iproute2 prints "isolated" under linkinfo.info_slave_data).
        var slave = _hostNs.Json("-d", "link", "show", "pbtveth0")[0].GetProperty("linkinfo").GetProperty("info_slave_data");
        Assert.True(slave.GetProperty("isolated").GetBoolean());
        Assert.True(slave.GetProperty("hairpin").GetBoolean());

        _host.SetBridgePortIsolated(port.Index, false);
        Assert.False(_host.GetLink(port.Index)!.BridgePort!.Isolated);
    }
}
