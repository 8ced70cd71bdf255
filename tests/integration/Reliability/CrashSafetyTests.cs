using System.Diagnostics;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Reliability;

/// <summary>
/// Issue #3, fault injection: plugin processes SIGKILLed at random moments (kubelet timeouts, OOM kills, node
/// shutdown). Whatever a killed ADD left, the next invocations must open the database cleanly, never hand out an
/// address the kernel already carries, and DEL must remove every trace.
/// </summary>
[Collection(StressCollection.Name)]
public sealed class CrashSafetyTests(ITestOutputHelper output)
{
    private static readonly PluginFlavor Flavor = PluginFlavor.PodBridge;

    /// <param name="warm">With `podbridge-ipam serve` answering the plugins' IPAM requests (issue #10).</param>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task SigkilledAddsAndDels_LeaveACleanDatabase_AndDelRemovesEveryTrace(bool warm)
    {
        var runs = Knobs.Int("PODBRIDGE_IT_KILL_RUNS", 200);
        const int parallel = 4, namespaces = 10, calibrationRuns = 8;
        var clock = Stopwatch.StartNew();

        using var owned = new Owned();
        var net = owned.Add(await TestNetwork.Create(isolatedNode: true));
        var server = warm ? owned.Add(await WarmServer.Start(net.DataDir)) : null;
        // Attachments share a handful of netns (eth0..ethN each): creating 200 namespaces would cost more than the test.
        var netns = new List<TestNetNs>();
        for (var i = 0; i < namespaces; i++) netns.Add(owned.Add(await TestNetNs.Create()));
        var total = runs + calibrationRuns;
        var attachments = Enumerable.Range(0, total)
            .Select(i => new Attachment(netns[i % namespaces], RunScope.NewContainerId("k"), $"eth{i / namespaces}"))
            .ToArray();
        var conf = net.Config(Flavor);   // a /24: 253 addresses for at most 208 leases
        var rng = new Random(Knobs.Int("PODBRIDGE_IT_SEED", Environment.TickCount));

        KillOutcome Invoke(string command, Attachment a, TimeSpan? killAfter) =>
            KillingRunner.Run(Flavor.BridgeBinary(), a.Call(command, conf) with { Path = Flavor.CniPath(), NodeNetNs = net.NodeNs }, killAfter);

        async Task<KillOutcome[]> Batch(string command, IReadOnlyList<Attachment> batch, Func<TimeSpan?> killAfter)
        {
            var delays = batch.Select(_ => killAfter()).ToArray();
            return await Task.WhenAll(batch.Select((a, i) => Task.Run(() => Invoke(command, a, delays[i]))));
        }

        // Calibration: how long an ADD takes here, 4 at a time. Kill moments are spread over that whole span, so
        // they land in every phase (startup, lock, database write, fsync, netlink) instead of all before the
        // database is even opened (on this loaded 2-core machine an ADD takes tens of ms, not the ~8 ms of an idle one).
        var calibration = new List<KillOutcome>();
        for (var i = 0; i < calibrationRuns; i += parallel)
            calibration.AddRange(await Batch("ADD", attachments[i..(i + parallel)], () => null));
        foreach (var c in calibration)
            if (c.ExitCode != 0) throw new XunitException($"calibration ADD failed:\n{c}");
        var addMs = Knobs.Median(calibration.Select(c => c.Elapsed.TotalMilliseconds));
        var windowMs = Knobs.Int("PODBRIDGE_IT_KILL_WINDOW_MS", (int)Math.Clamp(addMs * 2, 8, 400));
        TimeSpan? RandomKill() => TimeSpan.FromMilliseconds(rng.NextDouble() * windowMs);

        // Phase 1: ADDs, each SIGKILLed at a random moment; the lease list must open after every batch.
        var adds = new List<KillOutcome>();
        var victims = attachments[calibrationRuns..];
        for (var i = 0; i < victims.Length; i += parallel)
        {
            var batch = await Batch("ADD", victims[i..Math.Min(i + parallel, victims.Length)], RandomKill);
            adds.AddRange(batch);
            foreach (var o in batch.Where(o => !o.Killed))
                if (o.ExitCode != 0 || o.Json is not JsonObject r || r["ips"] is not JsonArray)
                    throw new XunitException($"an ADD that ran to completion after earlier kills failed (code {o.ErrorCode}):\n{o}");
            await LeaseList.Of(net);   // throws unless the database opens and lists cleanly
        }

        // The state the crashes left, before any DEL. Kernel address => lease of that same attachment: an address is
        // configured only from a committed allocation, so an address without its lease would mean one can be handed out
        // twice. An interface without a lease is a killed ADD whose links were being created while its IPAM call was
        // still running (BridgePlugin.Add overlaps the two); it carries no address, and DEL removes it below.
        var leases = await LeaseList.Of(net);
        var leaseByOwner = leases.GroupBy(l => l.Owner).ToDictionary(g => g.Key, g => g.Select(l => l.Ip).ToList());
        Assert.Equal(leases.Count, leases.Select(l => l.Ip).Distinct().Count());
        var byNs = attachments.GroupBy(a => a.NetNs).ToDictionary(g => g.Key, g => g.ToDictionary(a => a.IfName));
        var kernelAddresses = new List<string>();
        var (withIface, withAddress) = (new HashSet<Attachment>(), new HashSet<Attachment>());
        foreach (var ns in netns)
        {
            foreach (var (ifName, addrs) in await KernelView.GlobalAddressesByLink(ns))
            {
                var owner = byNs[ns].GetValueOrDefault(ifName) ?? throw new XunitException($"unknown link {ifName} in {ns}");
                withIface.Add(owner);
                foreach (var addr in addrs)
                {
                    withAddress.Add(owner);
                    kernelAddresses.Add(addr.Local);
                    var leased = leaseByOwner.GetValueOrDefault((owner.ContainerId, owner.IfName)) ?? [];
                    if (!leased.Contains(addr.Local))
                        throw new XunitException($"{owner} carries {addr.Cidr} but holds no lease for it (leases: [{string.Join(", ", leased)}])");
                }
            }
        }
        Assert.Equal(kernelAddresses.Count, kernelAddresses.Distinct().Count());
        foreach (var done in calibration.Concat(adds).Where(o => !o.Killed))
        {
            var address = Assert.Single(Must.ResultAddresses((JsonObject)done.Json!));
            var owner = (done.Call.ContainerId, done.Call.IfName);
            Assert.True(leaseByOwner.GetValueOrDefault(owner)?.Contains(address) == true, $"completed ADD {owner} got {address} but the lease list does not have it");
        }
        var killedAdds = adds.Where(o => o.Killed).ToList();
        var killedOwners = killedAdds.Select(o => (o.Call.ContainerId, o.Call.IfName)).ToHashSet();
        var killedAttachments = victims.Where(a => killedOwners.Contains((a.ContainerId, a.IfName))).ToList();
        var killedNoLease = killedAttachments.Count(a => !leaseByOwner.ContainsKey((a.ContainerId, a.IfName)) && !withIface.Contains(a));
        var killedIfaceNoLease = killedAttachments.Count(a => !leaseByOwner.ContainsKey((a.ContainerId, a.IfName)) && withIface.Contains(a));
        var killedLeaseOnly = killedAttachments.Count(a => leaseByOwner.ContainsKey((a.ContainerId, a.IfName)) && !withIface.Contains(a));
        var killedIfaceNoAddr = killedAttachments.Count(a => withIface.Contains(a) && !withAddress.Contains(a) && leaseByOwner.ContainsKey((a.ContainerId, a.IfName)));
        var killedWithAddr = killedAttachments.Count(a => withAddress.Contains(a));
        var leasesBeforeDel = leases.Count;
        var portsBeforeDel = (await KernelView.BridgePortNames(net)).Count;
        var nodeLinksBeforeDel = (await KernelView.StrayNodeLinks(net)).Count;

        // Phase 2: DEL for every attachment, also SIGKILLed at random; phase 3: DEL again, left alone, must finish the job.
        var dels = new List<KillOutcome>();
        for (var i = 0; i < attachments.Length; i += parallel)
        {
            var batch = await Batch("DEL", attachments[i..Math.Min(i + parallel, attachments.Length)], RandomKill);
            dels.AddRange(batch);
            foreach (var o in batch.Where(o => !o.Killed))
                if (o.ExitCode != 0 || o.Stdout.Trim().Length != 0)
                    throw new XunitException($"a DEL that ran to completion after earlier kills failed (code {o.ErrorCode}):\n{o}");
        }
        await LeaseList.Of(net);
        for (var i = 0; i < attachments.Length; i += parallel)
        {
            foreach (var o in await Batch("DEL", attachments[i..Math.Min(i + parallel, attachments.Length)], () => null))
                if (o.ExitCode != 0 || o.Stdout.Trim().Length != 0)
                    throw new XunitException($"final DEL failed (code {o.ErrorCode}):\n{o}");
        }

        var leasesLeft = (await LeaseList.Of(net)).Count;
        await Kernel.Eventually(async () => (await KernelView.StrayNodeLinks(net)).Count == 0);
        var nodeLinksLeft = await KernelView.StrayNodeLinks(net);
        var podLinksLeft = new List<string>();
        foreach (var ns in netns)
            podLinksLeft.AddRange((await KernelView.PodLinks(ns)).Select(l => $"{ns.Name}/{l.Name}"));

        var completedAdds = adds.Count(o => !o.Killed);
        var killedDels = dels.Count(o => o.Killed);
        output.WriteLine($"ADD median {addMs:F1} ms (calibration, {parallel} parallel); kill window 0..{windowMs} ms after spawn");
        output.WriteLine($"ADD runs {adds.Count}: SIGKILLed {killedAdds.Count}, completed {completedAdds} (all succeeded)");
        output.WriteLine($"  killed ADDs left: nothing {killedNoLease}, an iface only {killedIfaceNoLease}, a lease only {killedLeaseOnly}, lease+iface without address {killedIfaceNoAddr}, lease+iface+address {killedWithAddr}");
        output.WriteLine($"before DEL: {leasesBeforeDel} leases, {portsBeforeDel} bridge ports, {nodeLinksBeforeDel} node links besides the bridge");
        output.WriteLine($"DEL runs {dels.Count}: SIGKILLed {killedDels}, completed {dels.Count - killedDels}; then {attachments.Length} DELs unkilled");
        output.WriteLine($"after DEL: leases left {leasesLeft}, node links left {nodeLinksLeft.Count}, pod links left {podLinksLeft.Count}; {clock.Elapsed.TotalSeconds:F1} s");

        Assert.True(killedAdds.Count > 0 && completedAdds > 0, $"the kill window {windowMs} ms must both kill and spare some ADDs: killed {killedAdds.Count}, completed {completedAdds}");
        Assert.Equal(0, leasesLeft);
        Assert.True(nodeLinksLeft.Count == 0, $"links left in the node netns: {string.Join(", ", nodeLinksLeft.Select(l => $"{l.Name} ({l.Kind}, master {l.Master})"))}");
        Assert.True(podLinksLeft.Count == 0, $"links left in pod netns: {string.Join(", ", podLinksLeft)}");
        if (server is not null)
        {
            output.WriteLine($"the warm server answered {server.Served} IPAM requests");
            Assert.True(server.Served > 0, "the warm server never answered");
        }
    }
}
