using System.Buffers.Binary;
using System.Net;
using System.Text.Json;
using k8s;
using k8s.Models;
using PodBridge.Node;

namespace PodBridge.Node.Tests;

public class AgentOptionsTests
{
    private static Func<string, string?> Env(params (string, string)[] vars) =>
        name => vars.FirstOrDefault(v => v.Item1 == name).Item2;

    [Fact]
    public void Defaults_come_from_the_issue_and_the_environment()
    {
        var o = AgentOptions.Parse([], Env(("NODE_NAME", "kind-worker"), ("KUBECONFIG", "/k")));
        Assert.Equal(("kind-worker", "/k", "/opt/cni/bin", "/etc/cni/net.d", "/var/lib/cni/podbridge", 9765, true),
            (o.NodeName, o.Kubeconfig, o.CniBinDir, o.CniConfDir, o.DataDir, o.HealthzPort, o.InstallBinaries));
    }

    [Fact]
    public void Flags_override_the_environment_in_both_spellings()
    {
        var o = AgentOptions.Parse(["--node-name=a", "--kubeconfig", "/x", "--cni-bin-dir", "/b", "--cni-conf-dir=/c",
            "--data-dir", "/d", "--healthz-port", "0", "--no-install", "--node-libc", "/host/libc.so.6"], Env(("NODE_NAME", "env")));
        Assert.Equal(("a", "/x", "/b", "/c", "/d", 0, false, "/host/libc.so.6"),
            (o.NodeName, o.Kubeconfig, o.CniBinDir, o.CniConfDir, o.DataDir, o.HealthzPort, o.InstallBinaries, o.NodeLibc));
    }

    [Theory]
    [InlineData(new string[0], "--node-name")]
    [InlineData(new[] { "--node-name", "a", "--cni-conf-dir", "relative" }, "--cni-conf-dir")]
    [InlineData(new[] { "--node-name", "a", "--healthz-port", "http" }, "--healthz-port")]
    [InlineData(new[] { "--node-name", "a", "--bogus" }, "--bogus")]
    [InlineData(new[] { "--node-name" }, "--node-name needs a value")]
    public void Bad_flags_are_rejected_naming_the_flag(string[] args, string mention)
    {
        var e = Assert.Throws<ArgumentException>(() => AgentOptions.Parse(args, Env()));
        Assert.Contains(mention, e.Message);
    }
}

public class ConflistTests
{
    [Fact]
    public void Dual_stack_gets_two_range_sets_in_the_apis_order_then_portmap_and_no_ipmasq()
    {
        var bytes = Conflist.Render([IPNetwork.Parse("10.244.1.0/24"), IPNetwork.Parse("fd00:10:244:1::/64")], "/var/lib/cni/podbridge");
        using var doc = JsonDocument.Parse(bytes);
        var root = doc.RootElement;
        Assert.Equal("1.0.0", root.GetProperty("cniVersion").GetString());
        Assert.Equal("podbridge", root.GetProperty("name").GetString());
        var plugins = root.GetProperty("plugins");
        Assert.Equal(2, plugins.GetArrayLength());
        var bridge = plugins[0];
        Assert.Equal("podbridge", bridge.GetProperty("type").GetString());
        Assert.True(bridge.GetProperty("isGateway").GetBoolean());
        Assert.True(bridge.GetProperty("isDefaultGateway").GetBoolean());
        Assert.False(bridge.TryGetProperty("ipMasq", out _));
        var ranges = bridge.GetProperty("ipam").GetProperty("ranges");
        Assert.Equal(["10.244.1.0/24", "fd00:10:244:1::/64"], ranges.EnumerateArray().Select(r => r[0].GetProperty("subnet").GetString()));
        Assert.Equal("/var/lib/cni/podbridge", bridge.GetProperty("ipam").GetProperty("dataDir").GetString());
        Assert.Equal("portmap", plugins[1].GetProperty("type").GetString());
        Assert.True(plugins[1].GetProperty("capabilities").GetProperty("portMappings").GetBoolean());
        Assert.True(string.CompareOrdinal(Conflist.FileName, "10-kindnet.conflist") < 0);
    }

    [Fact]
    public void Rendering_is_deterministic_so_unchanged_cidrs_mean_an_unchanged_file()
    {
        IPNetwork[] cidrs = [IPNetwork.Parse("10.244.1.0/24")];
        Assert.Equal(Conflist.Render(cidrs, "/d"), Conflist.Render(cidrs, "/d"));
    }
}

public class DesiredStateTests
{
    private static V1Node Node(string json) => KubernetesJson.Deserialize<V1Node>(json);

    private static ClusterNode N(string name, string[] cidrs, string? v4 = null, string? v6 = null) =>
        new(name, [.. cidrs.Select(IPNetwork.Parse)], v4 is null ? null : IPAddress.Parse(v4), v6 is null ? null : IPAddress.Parse(v6));

    [Fact]
    public void A_node_object_gives_pod_cidrs_and_the_first_internal_ip_per_family()
    {
        var node = ClusterNode.From(Node("""
            {"metadata":{"name":"w1"},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:1::/64","junk"]},
             "status":{"addresses":[{"type":"Hostname","address":"w1"},{"type":"ExternalIP","address":"1.2.3.4"},
               {"type":"InternalIP","address":"172.18.0.3"},{"type":"InternalIP","address":"fc00::3"},{"type":"InternalIP","address":"172.18.0.99"}]}}
            """), _ => { });
        Assert.Equal("w1", node.Name);
        Assert.Equal([IPNetwork.Parse("10.244.1.0/24"), IPNetwork.Parse("fd00:1::/64")], node.PodCidrs);
        Assert.Equal(IPAddress.Parse("172.18.0.3"), node.InternalV4);
        Assert.Equal(IPAddress.Parse("fc00::3"), node.InternalV6);
    }

    [Fact]
    public void Routes_go_to_every_other_node_via_its_internal_ip_of_the_same_family()
    {
        var logs = new List<string>();
        var state = DesiredState.From("a", [
            N("a", ["10.244.0.0/24", "fd00:0::/64"], "172.18.0.2", "fc00::2"),
            N("b", ["10.244.1.0/24", "fd00:1::/64"], "172.18.0.3"),   // no IPv6 InternalIP: no v6 route, logged
            N("c", [], "172.18.0.4"),                                   // not yet allocated: nothing
        ], logs.Add);
        Assert.Equal("a", state.Self!.Name);
        Assert.Equal([new DesiredRoute(IPNetwork.Parse("10.244.1.0/24"), IPAddress.Parse("172.18.0.3"), "b")], state.Routes);
        Assert.Contains(logs, l => l.Contains("no IPv6 InternalIP"));
        Assert.Equal(4, state.ClusterCidrs.Count);
    }

    [Fact]
    public void Without_its_own_node_the_agent_still_routes_to_the_others()
    {
        var state = DesiredState.From("missing", [N("b", ["10.244.1.0/24"], "172.18.0.3")], _ => { });
        Assert.Null(state.Self);
        Assert.Single(state.Routes);
    }

    [Fact]
    public void Masquerade_returns_for_every_cluster_cidr_before_masquerading_this_nodes_pods()
    {
        var rules = Masquerade.Rules([IPNetwork.Parse("10.244.0.0/24")], [IPNetwork.Parse("10.244.0.0/24"), IPNetwork.Parse("10.244.1.0/24")]);
        Assert.Equal(["ip daddr 10.244.0.0/24 return", "ip daddr 10.244.1.0/24 return", "ip saddr 10.244.0.0/24 masquerade"],
            rules.Select(r => r.Text));
    }
}

public class FilesTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pbnode").FullName;

    [Fact]
    public void Glibc_required_is_the_highest_version_string_in_the_binary()
    {
        var path = Path.Combine(_dir, "bin");
        File.WriteAllBytes(path, [.. "\0GLIBC_2.2.5\0GLIBC_PRIVATE\0GLIBC_2.34\0GLIBC_2.17\0xGLIBC_9.9"u8]); // last: not NUL-terminated
        Assert.Equal(new Version(2, 34), Glibc.Required(path));
        File.WriteAllBytes(path, [.. "static binary"u8]);
        Assert.Null(Glibc.Required(path));
        Assert.NotNull(Glibc.Running());
    }

    [Theory]
    [InlineData(new uint[] { 6, 1, 1, 4 }, true)]      // PHDR, LOAD, LOAD, NOTE: static
    [InlineData(new uint[] { 6, 3, 1, 2 }, false)]     // with INTERP and DYNAMIC: dynamically linked
    [InlineData(new uint[] { 1, 2 }, false)]           // DYNAMIC only (a shared library)
    public void A_static_executable_is_one_without_a_program_interpreter(uint[] programHeaderTypes, bool isStatic)
    {
        var path = Path.Combine(_dir, "elf");
        var bytes = new byte[64 + 56 * programHeaderTypes.Length];
        "\x7fELF"u8.CopyTo(bytes);
        bytes[4] = 2; bytes[5] = 1; bytes[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(16), 2); // ET_EXEC
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(32), 64);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(54), 56);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(56), (ushort)programHeaderTypes.Length);
        for (var i = 0; i < programHeaderTypes.Length; i++)
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(64 + 56 * i), programHeaderTypes[i]);
        File.WriteAllBytes(path, bytes);
        Assert.Equal(isStatic, Glibc.IsStaticExecutable(path));
        File.WriteAllBytes(path, [.. "\0GLIBC_2.34\0"u8]); // not ELF
        Assert.False(Glibc.IsStaticExecutable(path));
    }

    [Fact]
    public void An_atomic_write_leaves_an_unchanged_file_alone_and_replaces_a_changed_one()
    {
        var path = Path.Combine(_dir, "x.conflist");
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        Assert.True(AtomicFile.WriteIfChanged(path, "a"u8, mode));
        var first = new FileInfo(path).LastWriteTimeUtc;
        Thread.Sleep(20);
        Assert.False(AtomicFile.WriteIfChanged(path, "a"u8, mode));
        Assert.Equal(first, new FileInfo(path).LastWriteTimeUtc);
        Assert.True(AtomicFile.WriteIfChanged(path, "b"u8, mode));
        Assert.Equal("b", File.ReadAllText(path));
        Assert.Equal(mode, File.GetUnixFileMode(path));
        Assert.Equal([path], Directory.GetFiles(_dir)); // no temp file left
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
