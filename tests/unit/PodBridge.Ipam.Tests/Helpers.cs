using System.Text;
using PodBridge.Cni;

namespace PodBridge.Ipam.Tests;

/// <summary>Boot id and netns identities under the test's control: a path is "gone" or "replaced" on demand.</summary>
internal sealed class FakeProbe : IHostProbe
{
    public string BootId { get; set; } = "boot-A";
    public HashSet<string> Gone { get; } = [];
    public Dictionary<string, NetNsId> Replaced { get; } = [];

    public NetNsId? Identify(string path)
    {
        if (Gone.Contains(path)) return null;
        if (Replaced.TryGetValue(path, out var id)) return id;
        return new NetNsId(4, (ulong)(uint)StringComparer.Ordinal.GetHashCode(path));
    }
}

internal static class H
{
    public const string Net = "net1";

    public static NetConf Conf(string ipam, string extra = "", string name = Net, string version = "1.1.0") =>
        NetConf.Parse(Encoding.UTF8.GetBytes(
            $$"""{"cniVersion":"{{version}}","name":"{{name}}","type":"podbridge","ipam":{{ipam}}{{extra}}}"""));

    /// <summary>ipam with the given ranges JSON (list of range sets).</summary>
    public static NetConf Ranges(string ranges, string extra = "") =>
        Conf($$"""{"type":"podbridge-ipam","ranges":{{ranges}}}""", extra);

    public static CniRequest Req(string containerId, string ifName = "eth0", string? netns = null, string args = "") =>
        new(CniVerb.Add, containerId, netns ?? $"/run/netns/{containerId}", ifName, CniArgs.Parse(args), [], [])
        {
            Environment = new Dictionary<string, string>(),
        };

    public static (PodBridgeIpam Ipam, InMemoryLeaseStore Store, FakeProbe Probe) InMemory()
    {
        var store = new InMemoryLeaseStore();
        var probe = new FakeProbe();
        return (new PodBridgeIpam(_ => store, probe), store, probe);
    }

    public static string Addr(this CniResult r, int i = 0) => r.Ips[i].Address.Address.ToString();

    public static CniException Throws(CniErrorCode code, Action a)
    {
        var e = Assert.Throws<CniException>(a);
        Assert.True(code == e.Code, $"expected code {(int)code} {code}, got {(int)e.Code} {e.Code}: {e.Message}");
        return e;
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "pbipam-" + Guid.NewGuid().ToString("n")[..12]);
        Directory.CreateDirectory(d);
        return d;
    }
}
