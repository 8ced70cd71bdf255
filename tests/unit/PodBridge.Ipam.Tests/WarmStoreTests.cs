using System.Text;
using PodBridge.Cni;
using PodBridge.Ipam.Warm;

namespace PodBridge.Ipam.Tests;

/// <summary>The warm server's store (database kept open between transactions) and its wire format.</summary>
public sealed class WarmStoreTests : IDisposable
{
    private readonly string _dir = H.TempDir();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static IpAddr Ip(string s) { IpAddr.TryParse(s, out var a); return a; }

    private static void Reserve(ILeaseStore store, string ip, string owner)
    {
        using var tx = store.Begin();
        Assert.True(tx.TryReserve(new Lease("n", Ip(ip), 0, owner, "eth0") { BootId = "b", NetNsPath = "/p" }));
        tx.Commit();
    }

    private static List<string> Owners(ILeaseStore store)
    {
        using var tx = store.Begin();
        return tx.List("n").Select(l => l.ContainerId).Order().ToList();
    }

    [Fact]
    public void Warm_store_keeps_its_engine_but_sees_every_write_made_in_process_in_between()
    {
        var warm = new LiteDbLeaseStore(_dir, null, keepOpen: true);
        var cold = new LiteDbLeaseStore(_dir);
        try
        {
            Reserve(warm, "10.0.0.1", "w1");
            Reserve(cold, "10.0.0.2", "c1");           // bumps the lock file's generation
            Assert.Equal(["c1", "w1"], Owners(warm));   // reopened: sees c1
            Reserve(warm, "10.0.0.3", "w2");
            Assert.Equal(["c1", "w1", "w2"], Owners(cold));
            using (var tx = warm.Begin())
                Assert.False(tx.TryReserve(new Lease("n", Ip("10.0.0.2"), 0, "x", "eth0")), "the warm store handed out an address an in-process caller holds");
        }
        finally { warm.CloseWarm(); }
    }

    [Fact]
    public void Warm_store_reopens_when_the_files_change_behind_its_back()
    {
        var warm = new LiteDbLeaseStore(_dir, null, keepOpen: true);
        try
        {
            Reserve(warm, "10.0.0.1", "w1");
            File.WriteAllBytes(warm.DbPath, new byte[new FileInfo(warm.DbPath).Length]); // zeros, same size
            var e = Assert.Throws<CniException>(() => Owners(warm));
            Assert.Equal(CniErrorCode.StoreCorrupt, e.Code);
        }
        finally { warm.CloseWarm(); }
    }

    [Fact]
    public void Requests_round_trip_and_a_newline_in_a_variable_keeps_the_call_in_process()
    {
        var env = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = "c1", ["CNI_NETNS"] = "/run/netns/x", ["CNI_IFNAME"] = "eth0",
            ["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME=a=b",
        };
        var config = Encoding.UTF8.GetBytes("{\"cniVersion\":\"1.0.0\",\n\"name\":\"n\"}");
        var r = H.Req("c1") with { StdinConfig = config, Environment = env };
        var message = WarmProtocol.EncodeRequest(CniVerb.Add, r)!;
        var (decoded, body) = WarmProtocol.DecodeRequest(message[4..]);
        Assert.Equal(env.OrderBy(kv => kv.Key), decoded.OrderBy(kv => kv.Key));
        Assert.Equal(config, body);

        // The bridge's rollback releases an ADD's allocation: the ADD's request, sent as a DEL.
        var (rollback, _) = WarmProtocol.DecodeRequest(WarmProtocol.EncodeRequest(CniVerb.Del, r)![4..]);
        Assert.Equal("DEL", rollback["CNI_COMMAND"]);
        Assert.Equal("c1", rollback["CNI_CONTAINERID"]);

        Assert.Null(WarmProtocol.EncodeRequest(CniVerb.Add, r with { Environment = new Dictionary<string, string>(env) { ["CNI_ARGS"] = "a\nb" } }));
        Assert.Throws<InvalidDataException>(() => WarmProtocol.DecodeRequest(Encoding.UTF8.GetBytes("PBIPAM1\nEVIL=1\n\n{}")));
    }
}
