using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using PodBridge.Netlink;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Cluster;

/// <summary>
/// A kind-like cluster made of network namespaces: one "kind network" namespace holding a bridge (172.18.0.1/24,
/// fc00:f853:ccd:e793::1/64, like docker's kind network) and the stand-in API server listening on it; per node a
/// namespace with eth0 on that bridge, its own CNI bin/conf/data dirs, and the published podbridge-node running in
/// it; and an "outside" namespace on the same network with an address no pod CIDR covers. Everything is named by
/// <see cref="RunScope"/> and removed in <see cref="DisposeAsync"/>, agents first (by the pids this class started).
/// </summary>
public sealed class SimulatedCluster : IAsyncDisposable
{
    public const string ApiToken = "podbridge-test-token";
    public const string OutsideV4 = "172.18.0.100";

    private readonly List<TestNetNs> _namespaces = [];
    private readonly List<string> _dirs = [];
    private readonly List<AgentProcess> _agents = [];
    private readonly List<TestPod> _pods = [];

    private SimulatedCluster(TestNetNs kindNetwork, FakeKubeApi api, string kubeconfig)
    {
        KindNetwork = kindNetwork;
        Api = api;
        Kubeconfig = kubeconfig;
    }

    public TestNetNs KindNetwork { get; }
    public FakeKubeApi Api { get; }
    public string Kubeconfig { get; }
    public List<SimNode> Nodes { get; } = [];
    public TestNetNs? Outside { get; private set; }
    public string Bridge { get; private set; } = "";

    public static string AgentBinary => Binaries.Require(Binaries.PodBridgeDir, "podbridge-node");

    public static string PodCidrV4(int index) => $"10.244.{index}.0/24";
    public static string PodCidrV6(int index) => $"fd00:10:244:{index}::/64";
    public static string NodeV4(int index) => $"172.18.0.{index + 1}";
    public static string NodeV6(int index) => $"fc00:f853:ccd:e793::{index + 1}";

    /// <summary>The kind network and the API server (serving no Node yet); nodes are added with <see cref="AddNode"/>.</summary>
    public static async Task<SimulatedCluster> Create()
    {
        RunScope.EnsureInitialized();
        var kind = await TestNetNs.Create();
        try
        {
            var bridge = RunScope.NewName();
            (await Sh.Ip(kind.Name, "link", "add", bridge, "type", "bridge")).EnsureOk();
            (await Sh.Ip(kind.Name, "addr", "add", "172.18.0.1/24", "dev", bridge)).EnsureOk();
            (await Sh.Ip(kind.Name, "addr", "add", "fc00:f853:ccd:e793::1/64", "dev", bridge, "nodad")).EnsureOk();
            (await Sh.Ip(kind.Name, "link", "set", bridge, "up")).EnsureOk();
            using var handle = NetNsHandle.Open(kind.Path);
            var api = new FakeKubeApi(handle.RunInside(() => FakeKubeApi.CreateListener(IPAddress.Parse("172.18.0.1"))), ApiToken);
            var dir = RunScope.NewTempDir("cluster");
            var kubeconfig = api.WriteKubeconfig(Path.Combine(dir, "kubeconfig"));
            var cluster = new SimulatedCluster(kind, api, kubeconfig) { Bridge = bridge };
            cluster._dirs.Add(dir);
            return cluster;
        }
        catch
        {
            kind.Dispose();
            throw;
        }
    }

    /// <summary>A node namespace plugged into the kind network as 172.18.0.(index+1); not yet in the API, no agent yet.</summary>
    public async Task<SimNode> AddNodeNamespace(int index)
    {
        var ns = await TestNetNs.Create();
        _namespaces.Add(ns);
        await Plug(ns, $"{NodeV4(index)}/24", $"{NodeV6(index)}/64");
        var root = RunScope.NewTempDir($"node{index}");
        _dirs.Add(root);
        var node = new SimNode(this, index, $"{RunScope.Prefix}-node{index}", ns,
            Path.Combine(root, "bin"), Path.Combine(root, "conf"), Path.Combine(root, "data"));
        Directory.CreateDirectory(node.BinDir);
        Directory.CreateDirectory(node.ConfDir);
        Nodes.Add(node);
        return node;
    }

    /// <summary>A temp dir removed with the cluster.</summary>
    public string NewDir(string tag)
    {
        var dir = RunScope.NewTempDir(tag);
        _dirs.Add(dir);
        return dir;
    }

    /// <summary>The API's Node object for <paramref name="node"/>: dual-stack pod CIDRs and InternalIPs.</summary>
    public void Register(SimNode node, bool withPodCidrs = true) =>
        Api.AddNode(node.Name, withPodCidrs ? [PodCidrV4(node.Index), PodCidrV6(node.Index)] : [], NodeV4(node.Index), NodeV6(node.Index));

    /// <summary>A namespace on the kind network outside every pod CIDR, with no route to any pod CIDR.</summary>
    public async Task<TestNetNs> AddOutside()
    {
        var ns = await TestNetNs.Create();
        _namespaces.Add(ns);
        await Plug(ns, $"{OutsideV4}/24", "fc00:f853:ccd:e793::100/64");
        Outside = ns;
        return ns;
    }

    private async Task Plug(TestNetNs ns, string v4, string v6)
    {
        var outer = RunScope.NewName();
        (await Sh.Ip(KindNetwork.Name, "link", "add", outer, "type", "veth", "peer", "name", "eth0", "netns", ns.Name)).EnsureOk();
        (await Sh.Ip(KindNetwork.Name, "link", "set", outer, "master", Bridge, "up")).EnsureOk();
        (await Sh.Ip(ns.Name, "addr", "add", v4, "dev", "eth0")).EnsureOk();
        (await Sh.Ip(ns.Name, "addr", "add", v6, "dev", "eth0", "nodad")).EnsureOk();
        (await Sh.Ip(ns.Name, "link", "set", "eth0", "up")).EnsureOk();
    }

    public AgentProcess StartAgent(SimNode node, params string[] extra)
    {
        var log = Path.Combine(Path.GetDirectoryName(node.BinDir)!, $"agent-{_agents.Count}.log");
        var agent = AgentProcess.Start(node, Kubeconfig, log, extra);
        _agents.Add(agent);
        return agent;
    }

    /// <summary>A pod on <paramref name="node"/>: ADD of the conflist's podbridge entry, as the runtime would run it.</summary>
    public async Task<(TestPod Pod, string V4, string? V6)> AddPod(SimNode node)
    {
        var pod = await TestPod.Create();
        _pods.Add(pod);
        var conflist = JsonNode.Parse(await File.ReadAllTextAsync(node.ConflistPath))!.AsObject();
        var plugin = conflist["plugins"]![0]!.DeepClone().AsObject();
        plugin["cniVersion"] = conflist["cniVersion"]!.DeepClone();
        plugin["name"] = conflist["name"]!.DeepClone();
        var outcome = await PluginRunner.Run(Path.Combine(node.BinDir, Binaries.PodBridgeName), new CniCall("ADD")
        {
            ContainerId = pod.ContainerId,
            NetNs = pod.NetNs.Path,
            IfName = pod.IfName,
            Path = node.BinDir,
            Stdin = plugin.ToJsonString(),
            NodeNetNs = node.NetNs.Name,
        });
        outcome.AssertSuccess();
        string? v4 = null, v6 = null;
        foreach (var ip in outcome.Result["ips"]!.AsArray())
        {
            var address = ((string)ip!["address"]!).Split('/')[0];
            if (address.Contains(':')) v6 ??= address;
            else v4 ??= address;
        }
        return (pod, v4 ?? throw outcome.Fail("no IPv4 address in the result"), v6);
    }

    /// <summary>Polls until <paramref name="condition"/> holds; fails with <paramref name="what"/> and the agents' logs.</summary>
    public async Task<TimeSpan> WaitFor(string what, Func<Task<bool>> condition, TimeSpan? timeout = null)
    {
        var watch = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(20);
        while (!await condition())
        {
            if (watch.Elapsed > limit) throw new XunitException($"timed out after {limit.TotalSeconds} s waiting for {what}\n{AgentLogs()}");
            await Task.Delay(10);
        }
        return watch.Elapsed;
    }

    public string AgentLogs() =>
        string.Join("\n", _agents.Select(a => $"--- agent {a.Node.Name} (pid {a.Pid}) ---\n{a.ReadLog()}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var agent in _agents) agent.Kill();
        Api.Dispose();
        foreach (var pod in _pods) pod.Dispose();
        foreach (var ns in _namespaces) ns.Dispose();
        KindNetwork.Dispose();
        foreach (var dir in _dirs)
        {
            try { Directory.Delete(dir, recursive: true); }
            catch (IOException) { }
        }
        await Task.CompletedTask;
    }
}

/// <summary>One simulated node: its namespace and the dirs its agent is pointed at.</summary>
public sealed record SimNode(SimulatedCluster Cluster, int Index, string Name, TestNetNs NetNs, string BinDir, string ConfDir, string DataDir)
{
    public string ConflistPath => Path.Combine(ConfDir, "00-podbridge.conflist");

    /// <summary>`ip -j route show proto 147` of both families: "DST via GW".</summary>
    public async Task<List<string>> AgentRoutes()
    {
        var routes = new List<string>();
        foreach (var family in new[] { "-4", "-6" })
        {
            var json = JsonNode.Parse((await Sh.Ip(NetNs.Name, "-j", family, "route", "show", "proto", "147")).EnsureOk().Stdout)!.AsArray();
            routes.AddRange(json.Select(r => $"{r!["dst"]} via {r["gateway"]}"));
        }
        routes.Sort(StringComparer.Ordinal);
        return routes;
    }

    /// <summary>Every route of the main table (both families), for "nothing changed" comparisons.</summary>
    public async Task<string> AllRoutes() =>
        (await Sh.Ip(NetNs.Name, "route", "show")).EnsureOk().Stdout + (await Sh.Ip(NetNs.Name, "-6", "route", "show")).EnsureOk().Stdout;

    public async Task<string> Ruleset() => (await NetNs.Exec("nft", "list", "ruleset")).EnsureOk().Stdout;

    /// <summary>GET /healthz on the agent's localhost port, from inside the node's namespace: the status code, or 0 when nothing listens.</summary>
    public int Healthz(int port)
    {
        using var handle = NetNsHandle.Open(NetNs.Path);
        using var socket = handle.RunInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            socket.Connect(IPAddress.Loopback, port);
            socket.Send(Encoding.ASCII.GetBytes("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
            var buffer = new byte[1024];
            var n = socket.Receive(buffer);
            var status = Encoding.ASCII.GetString(buffer, 0, n).Split(' ', 3);
            return status.Length > 1 && int.TryParse(status[1], out var code) ? code : -1;
        }
        catch (SocketException)
        {
            return 0;
        }
    }
}

/// <summary>A podbridge-node process started in a node's namespace (`ip netns exec` execs it: the pid is the agent's).</summary>
public sealed class AgentProcess
{
    private readonly Process _process;
    private readonly string _log;

    private AgentProcess(SimNode node, Process process, string log, Stopwatch started)
    {
        Node = node;
        _process = process;
        _log = log;
        Started = started;
    }

    public SimNode Node { get; }
    public int Pid => _process.Id;
    public Stopwatch Started { get; }
    public bool HasExited => _process.HasExited;
    public int ExitCode => _process.ExitCode;

    public const int HealthzPort = 19765;

    public static AgentProcess Start(SimNode node, string kubeconfig, string log, string[] extra)
    {
        var info = new ProcessStartInfo("ip")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "netns", "exec", node.NetNs.Name, SimulatedCluster.AgentBinary,
                     "--node-name", node.Name, "--kubeconfig", kubeconfig,
                     "--cni-bin-dir", node.BinDir, "--cni-conf-dir", node.ConfDir, "--data-dir", node.DataDir,
                     "--healthz-port", HealthzPort.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            info.ArgumentList.Add(a);
        foreach (var a in extra) info.ArgumentList.Add(a);
        info.Environment.Remove("NODE_NAME");
        info.Environment.Remove("KUBECONFIG");
        var started = Stopwatch.StartNew();
        var process = Process.Start(info) ?? throw new XunitException("could not start podbridge-node");
        // Never disposed while lines may still arrive (an exception in these handlers would end the test host);
        // the temp dir holding it is deleted with the cluster.
        var writer = new StreamWriter(new FileStream(log, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete)) { AutoFlush = true };
        var sync = new object();
        void Append(string? line) { if (line is null) return; lock (sync) writer.WriteLine(line); }
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return new AgentProcess(node, process, log, started);
    }

    public string ReadLog()
    {
        // HasExited turns true before the redirected-output events have all run; the parameterless WaitForExit
        // waits for them, so an exited agent's last lines are in the file before we read it.
        if (_process.HasExited) _process.WaitForExit();
        try
        {
            using var stream = new FileStream(_log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            return new StreamReader(stream).ReadToEnd();
        }
        catch (IOException e)
        {
            return $"(no log: {e.Message})";
        }
    }

    /// <summary>SIGTERM, as kubelet stops a pod; returns the exit code.</summary>
    public async Task<int> Terminate()
    {
        (await Sh.Run("kill", "-TERM", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture))).EnsureOk();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            _process.WaitForExit(5000);
        }
        catch (InvalidOperationException)
        {
        }
    }
}
