using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Operator;

/// <summary>
/// doctor, gc, leases and explain against a real private node: a live pod, a pod whose netns is gone (dead
/// lease), a veth on our bridge that no lease names (leaked), and ip_forward switched off.
/// </summary>
public sealed class DoctorGcTests
{
    [Fact]
    public async Task Doctor_finds_a_leaked_veth_a_dead_lease_and_a_disabled_sysctl_and_gc_removes_what_is_provably_gone()
    {
        using var node = await OperatorNode.Create();
        using var live = await TestPod.Create();
        var gone = await TestPod.Create();
        try
        {
            (await node.Call("ADD", live)).AssertSuccess();
            (await node.Call("ADD", gone)).AssertSuccess();

            var healthy = await node.Cli("doctor");
            Assert.True(healthy.ExitCode == 0, healthy.ToString());
            Assert.EndsWith("healthy", healthy.Stdout.Trim());

            // The pod's netns disappears without a DEL (a crashed runtime): its lease stays behind.
            await gone.NetNs.Delete();
            // A host veth on our bridge that no lease names.
            var leaked = $"veth{Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(4))}";
            await node.Net.Node!.Exec("ip", "link", "add", leaked, "type", "veth", "peer", "name", RunScope.NewName());
            await node.Net.Node.Exec("ip", "link", "set", leaked, "master", node.Net.Bridge);
            await Kernel.SetSysctl(node.Net.NodeNs!, "net.ipv4.ip_forward", "0");
            // The gone pod's veth pair dies with its netns, asynchronously: wait for the live one + the leaked one.
            Assert.True(await Kernel.Eventually(async () => (await Kernel.Links(node.Net.NodeNs, node.Net.Bridge)).Count == 2));

            var sick = await node.Cli("doctor");
            Assert.True(sick.ExitCode == 1, sick.ToString());
            Assert.Contains("FAIL  ip_forward: net.ipv4.ip_forward = 0", sick.Stdout);
            Assert.Contains("fix:   sysctl -w net.ipv4.ip_forward=1", sick.Stdout);
            Assert.Contains($"dead lease: {node.Net.V4(3)} held by {gone.ContainerId}/eth0: its netns {gone.NetNs.Path} no longer exists", sick.Stdout);
            Assert.Contains($"leaked veth: {leaked} on bridge {node.Net.Bridge}: no lease names it", sick.Stdout);
            Assert.Equal(2, sick.Stdout.Split('\n').Count(l => l.Trim() == "fix:   podbridge gc"));
            Assert.DoesNotContain(live.ContainerId, sick.Stdout);
            Assert.Contains("3 finding(s)", sick.Stdout);

            var json = JsonNode.Parse((await node.Cli("doctor", "--json")).Stdout)!;
            Assert.False((bool)json["healthy"]!);
            Assert.All(json["checks"]!.AsArray().Where(c => !(bool)c!["ok"]!), c =>
            {
                Assert.False(string.IsNullOrEmpty((string?)c!["meaning"]));
                Assert.False(string.IsNullOrEmpty((string?)c!["fix"]));
            });

            // leases shows both, the dead one marked.
            var leases = (await node.Cli("leases", "--json")).EnsureOk().Stdout.Trim().Split('\n').Select(l => JsonNode.Parse(l)!).ToList();
            Assert.Equal(2, leases.Count);
            Assert.False((bool)leases.Single(l => (string?)l["containerID"] == live.ContainerId)["dead"]!);
            Assert.True((bool)leases.Single(l => (string?)l["containerID"] == gone.ContainerId)["dead"]!);
            Assert.Equal("team-a", (string?)leases[0]["podNamespace"]);
            var table = (await node.Cli("leases")).EnsureOk().Stdout;
            Assert.StartsWith("NETWORK", table);
            Assert.Contains("dead: its netns", table);

            // Dry run: says what it would do, does nothing.
            var dry = (await node.Cli("gc", "--dry-run")).EnsureOk().Stdout;
            Assert.Contains($"would release {node.Net.V4(3)} of {gone.ContainerId}/eth0", dry);
            Assert.Contains($"would delete veth {leaked}", dry);
            Assert.True(await Kernel.LinkExists(node.Net.NodeNs, leaked));
            Assert.Equal(2, (await node.Cli("leases", "--json")).Stdout.Trim().Split('\n').Length);

            var gc = (await node.Cli("gc")).EnsureOk().Stdout;
            Assert.Contains($"release {node.Net.V4(3)} of {gone.ContainerId}/eth0", gc);
            Assert.False(await Kernel.LinkExists(node.Net.NodeNs, leaked));
            var after = (await node.Cli("leases", "--json")).Stdout.Trim().Split('\n');
            Assert.Equal(live.ContainerId, (string?)JsonNode.Parse(Assert.Single(after))!["containerID"]);
            // The live pod is untouched: its veth and address are still there.
            Assert.Contains(await Kernel.GlobalAddresses(live.NetNs.Name, "eth0"), a => a.Local == node.Net.V4(2));
            Assert.Contains("nothing to collect", (await node.Cli("gc")).Stdout);

            var remaining = await node.Cli("doctor");
            Assert.Equal(1, remaining.ExitCode);
            Assert.Contains("1 finding(s)", remaining.Stdout);
            await Kernel.SetSysctl(node.Net.NodeNs!, "net.ipv4.ip_forward", "1");
            Assert.Equal(0, (await node.Cli("doctor")).ExitCode);

            (await node.Call("DEL", live)).AssertSilentSuccess();
        }
        finally
        {
            gone.Dispose();
        }
    }

    [Fact]
    public async Task Gc_removes_the_masquerade_element_of_a_pod_that_is_gone()
    {
        using var node = await OperatorNode.Create(p => p["ipMasq"] = true);
        var gone = await TestPod.Create();
        try
        {
            (await node.Call("ADD", gone)).AssertSuccess();
            var address = node.Net.V4(2);
            async Task<string> Table() => (await node.Net.Node!.Exec("nft", "list", "table", "inet", "podbridge")).EnsureOk().Stdout;
            Assert.Contains(address, await Table());

            await gone.NetNs.Delete();
            var doctor = await node.Cli("doctor");
            Assert.Equal(1, doctor.ExitCode);
            Assert.Contains($"masquerade: {address} is in nftables set inet podbridge masq_{node.Net.Name}_10.250.{node.Net.Octet}.0_24 with no live lease", doctor.Stdout);

            var gc = (await node.Cli("gc")).EnsureOk().Stdout;
            Assert.Contains($"remove masquerade element {address}", gc);
            Assert.DoesNotContain(address, await Table());
            Assert.Equal(0, (await node.Cli("doctor")).ExitCode);
        }
        finally
        {
            gone.Dispose();
        }
    }

    [Fact]
    public async Task Explain_shows_lease_interfaces_addresses_routes_and_log_lines_of_one_container()
    {
        using var node = await OperatorNode.Create();
        using var pod = await TestPod.Create();
        (await node.Call("ADD", pod)).AssertSuccess();

        var r = await node.Cli("explain", pod.ContainerId[..20]);
        Assert.True(r.ExitCode == 0, r.ToString());
        var text = r.Stdout;
        Assert.Contains($"container {pod.ContainerId} interface eth0 in network {node.Net.Name}", text);
        Assert.Contains($"pod        team-a/web-{pod.NetNs.Name}", text);
        Assert.Contains($"lease      {node.Net.V4(2)} (range set 0)", text);
        Assert.Contains($"netns      {pod.NetNs.Path} (present)", text);
        Assert.Matches($@"host veth  veth[0-9a-f]{{8}} ifindex \d+ up mtu \d+ mac [0-9a-f:]{{17}} on {node.Net.Bridge}\n", text);
        Assert.Contains($"address    {node.Net.V4(2)}/24", text);
        Assert.Contains($"route      10.250.{node.Net.Octet}.0/24 dev eth0", text);
        Assert.Contains("\"verb\":\"ADD\"", text);

        var unknown = await node.Cli("explain", "no-such-container");
        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("no lease of a container no-such-container*", unknown.Stdout);

        (await node.Call("DEL", pod)).AssertSilentSuccess();
    }
}
