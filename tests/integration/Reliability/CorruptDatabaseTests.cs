using System.Security.Cryptography;
using System.Text;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3, a damaged lease database: the plugin must say so (code 105, naming the file and the repair command)
/// and must never start over with an empty one, which would hand running pods' addresses out again.
/// </summary>
public sealed class CorruptDatabaseTests
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;
    private const string DbFileName = "podbridge-ipam.db";
    private const string LogFileName = "podbridge-ipam-log.db";

    /// <summary>What a disk, a crash or a careless operator leaves: same-size noise, zeroed blocks, a short file, an empty one.</summary>
    public enum Garbage { RandomBytes, Zeros, ShortText, Truncated }

    /// <remarks>
    /// Known failing (left running on purpose, reported to the lead): ShortText and Truncated. A data file shorter
    /// than one LiteDB page (8 KiB), including an empty one, is silently re-created as a new database: the ADD
    /// succeeds, every checkpointed lease is gone and the first live pod's address is handed out again.
    /// </remarks>
    /// <param name="warm">
    /// With `podbridge-ipam serve` holding the database open (issue #10): it must notice the damage too, not answer
    /// from what it had open.
    /// </param>
    [Theory]
    [InlineData(Garbage.RandomBytes, false)]
    [InlineData(Garbage.Zeros, false)]
    [InlineData(Garbage.ShortText, false)]
    [InlineData(Garbage.Truncated, false)]
    [InlineData(Garbage.RandomBytes, true)]
    [InlineData(Garbage.Zeros, true)]
    [InlineData(Garbage.ShortText, true)]
    [InlineData(Garbage.Truncated, true)]
    public async Task GarbageOverTheDatabase_Is105NamingFileAndRepair_AndIsNeverReset(Garbage garbage, bool warm)
    {
        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        if (warm) owned.Add(await WarmServer.Start(net.DataDir));
        var a = owned.Add(await TestPod.Create());
        var b = owned.Add(await TestPod.Create());
        var cni = new CniDriver(Flavor, net);
        var conf = net.Config(Flavor, "1.1.0");
        var aAddress = Assert.Single(Must.ResultAddresses((await cni.Add(a, conf)).AssertSuccess().Result));
        var leasesBefore = await PushLeasesIntoTheDataFile(net, conf, a.NetNs.Path);

        var db = Path.Combine(net.DataDir, DbFileName);
        var length = (int)new FileInfo(db).Length;
        var bytes = garbage switch
        {
            Garbage.RandomBytes => RandomNumberGenerator.GetBytes(length),
            Garbage.Zeros => new byte[length],
            Garbage.ShortText => Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("this is not a lease database\n", 40))),
            _ => [],
        };
        await File.WriteAllBytesAsync(db, bytes);
        var ports = await KernelView.BridgePortNames(net);
        var repair = $"podbridge-ipam repair --data-dir {net.DataDir}";

        // Twice: the first refusal must not have "fixed" anything for the second.
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var add = await cni.Add(b, conf);
            if (add.Succeeded)
            {
                var got = Assert.Single(Must.ResultAddresses(add.Result));
                var now = await LeaseList.Of(net);
                throw new XunitException(
                    $"ADD succeeded on a damaged database ({garbage}, {bytes.Length} bytes over a {length}-byte file): it was silently " +
                    $"re-created. {leasesBefore} leases before, {now.Count} now; it handed out {got}" +
                    (got == aAddress ? $", which pod {a.ContainerId} still carries on its eth0" : "") + $". Expected code 105.\n{add}");
            }
            add.AssertError(105, db, repair);
            Assert.False(await Kernel.LinkExists(b.NetNs.Name, b.IfName), "a refused ADD created the pod interface");
            Assert.Equal(ports, await KernelView.BridgePortNames(net));
            Assert.Equal(ports, (await KernelView.StrayNodeLinks(net)).Select(l => l.Name).Order(StringComparer.Ordinal));
            Assert.True(File.Exists(db), "the database file is gone");
            Assert.True(Same(bytes, await File.ReadAllBytesAsync(db)), "the damaged database was rewritten (reset?)");
        }

        // STATUS reports it to the runtime, `leases` to the operator; neither touches the file.
        (await cni.Invoke(new CniCall("STATUS") { Stdin = conf.ToJsonString() })).AssertError(50, db);
        var leases = await Sh.Run(Binaries.PodBridgeIpam, "leases", "--data-dir", net.DataDir);
        Assert.False(leases.Ok, $"`leases` on a damaged database must fail\n{leases}");
        Assert.Contains(db, leases.Stderr);
        Assert.True(Same(bytes, await File.ReadAllBytesAsync(db)), "STATUS or `leases` rewrote the damaged database");
    }

    /// <summary>
    /// Until LiteDB checkpoints, committed leases live in its log and a damaged data file costs nothing; the case
    /// that matters is leases in the data file. IPAM-only ADDs (live leases: the netns exists) until the log shrinks,
    /// i.e. was checkpointed into the data file. Returns the number of leases.
    /// </summary>
    private static async Task<int> PushLeasesIntoTheDataFile(TestNetwork net, System.Text.Json.Nodes.JsonObject conf, string netns)
    {
        var log = Path.Combine(net.DataDir, LogFileName);
        var previous = new FileInfo(log).Length;
        for (var i = 0; i < 60; i++)
        {
            (await PluginRunner.Run(Binaries.PodBridgeIpam, new CniCall("ADD")
            {
                ContainerId = RunScope.NewContainerId("fill"),
                NetNs = netns,
                IfName = "eth0",
                Path = Binaries.PodBridgeDir,
                Stdin = conf.ToJsonString(),
            })).AssertSuccess();
            var now = new FileInfo(log).Length;
            if (now < previous) return (await LeaseList.Of(net)).Count;
            previous = now;
        }
        throw new XunitException($"the IPAM log {log} never checkpointed after 60 commits");
    }

    private static bool Same(byte[] x, byte[] y) => x.AsSpan().SequenceEqual(y);
}
