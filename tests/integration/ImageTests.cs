using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;
using PodBridge.Netlink;
using Xunit.Abstractions;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The node image, built with podman from the published binaries exactly as deploy/build-image.sh stages it, once
/// for this class; removed (with the private podman storage) afterwards.
/// </summary>
public sealed class NodeImage : IAsyncLifetime
{
    public static readonly string[] Shipped = ["podbridge", "podbridge-ipam", "podbridge-node", "portmap", "loopback"];
    public const string BinDir = "/opt/podbridge/bin";

    private string? _context;

    public PodmanEnv Podman { get; private set; } = null!;
    public string Tag { get; } = $"localhost/{RunScope.NewName()}:test";
    public string BuildLog { get; private set; } = "";

    /// <summary>Where each shipped binary comes from on this machine.</summary>
    public static string SourceOf(string name) =>
        name is "portmap" or "loopback" ? Path.Combine(Binaries.ReferenceDir, name) : Binaries.Require(Binaries.PodBridgeDir, name);

    public async Task InitializeAsync()
    {
        // Missing binaries fail the tests (CI publishes all three); they are never a reason to skip.
        foreach (var name in Shipped) _ = Binaries.Require(name is "portmap" or "loopback" ? Binaries.ReferenceDir : Binaries.PodBridgeDir, name);
        _context = RunScope.NewTempDir("image-ctx");
        (await Sh.Run("bash", [DeployFiles.BuildScript, "--stage-only", _context, "--bin-dir", Binaries.PodBridgeDir])).EnsureOk();
        Podman = await PodmanEnv.Create(Binaries.ReferenceDir);   // podman wants some plugin dir; no CNI network is used
        var sw = Stopwatch.StartNew();
        BuildLog = (await Podman.Podman("build", "--tag", Tag, "--file", Path.Combine(_context, "Containerfile"), _context)).EnsureOk().Stdout;
        BuildLog += $"\n(built in {sw.Elapsed.TotalSeconds:F1} s)";
    }

    public async Task DisposeAsync()
    {
        if (Podman is not null)
        {
            await Podman.Podman("rmi", "--force", Tag);
            Podman.Dispose();
        }
        if (_context is not null) RunScope.TryDeleteDirectory(_context);
    }
}

/// <summary>
/// The image as a node runs it. No kubelet can run here, so podman runs the container the way
/// deploy/podbridge.yaml describes it — the manifest's own args, host mounts (from temp dirs), NET_ADMIN as the
/// only capability, a read-only root, no privilege escalation — in a network namespace of the test's own (the
/// "node": the agent's routes and nftables rules stay in there), against a <see cref="FakeKubeApi"/> listening
/// inside that namespace. The one difference from the cluster: a kubeconfig file instead of the service account.
/// </summary>
public sealed class ImageTests(NodeImage image, ITestOutputHelper output) : IClassFixture<NodeImage>
{
    private const string Libc = "/lib/x86_64-linux-gnu/libc.so.6";

    [Fact]
    public async Task Image_holds_our_binaries_their_libraries_and_no_shell()
    {
        var inspect = JsonNode.Parse((await image.Podman.Podman("image", "inspect", image.Tag)).EnsureOk().Stdout)![0]!;
        Assert.Equal([$"{NodeImage.BinDir}/podbridge-node"], inspect["Config"]!["Entrypoint"]!.AsArray().Select(e => (string)e!));

        var container = RunScope.NewName();
        var dir = RunScope.NewTempDir("image-fs");
        try
        {
            (await image.Podman.Podman("create", "--name", container, image.Tag)).EnsureOk();
            var tar = Path.Combine(dir, "fs.tar");
            (await image.Podman.Podman("export", "--output", tar, container)).EnsureOk();
            var files = (await Sh.Run("tar", "-tf", tar)).EnsureOk().Stdout
                .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(f => "/" + f.TrimStart('.', '/')).ToHashSet();
            var root = Path.Combine(dir, "root");
            Directory.CreateDirectory(root);
            (await Sh.Run("tar", "-xf", tar, "-C", root)).EnsureOk();

            foreach (var name in NodeImage.Shipped)
            {
                var inImage = Path.Combine(root, NodeImage.BinDir.TrimStart('/'), name);
                Assert.True(File.Exists(inImage), $"{name} is not in the image: {string.Join(' ', files.Order())}");
                Assert.Equal(await File.ReadAllBytesAsync(NodeImage.SourceOf(name)), await File.ReadAllBytesAsync(inImage));
            }
            // The loader and glibc the binaries link, and the TLS libraries .NET opens with dlopen.
            foreach (var lib in new[] { "/lib64/ld-linux-x86-64.so.2", Libc, "/lib/x86_64-linux-gnu/libm.so.6",
                         "/lib/x86_64-linux-gnu/libssl.so.3", "/lib/x86_64-linux-gnu/libcrypto.so.3" })
                Assert.Contains(lib, files);
            var shells = files.Where(f => Path.GetFileName(f) is "sh" or "bash" or "dash" or "ash" or "busybox").ToList();
            Assert.Empty(shells);
            Assert.DoesNotContain(files, f => f.StartsWith("/bin/", StringComparison.Ordinal) || f.StartsWith("/usr/bin/", StringComparison.Ordinal));
        }
        finally
        {
            await image.Podman.Podman("rm", "--force", container);
            RunScope.TryDeleteDirectory(dir);
        }

        // No shell to run, even when asked for one.
        var shell = await image.Podman.Podman("run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image.Tag, "-c", "true");
        Assert.False(shell.Ok, shell.ToString());

        // The agent starts in the image (its loader and libraries are all there) and knows every flag the manifest passes.
        var help = (await image.Podman.Podman("run", "--rm", "--network", "none", image.Tag, "--help")).EnsureOk().Stdout;
        var container0 = DeployFiles.AgentContainer(DeployFiles.Manifest());
        foreach (var arg in DeployFiles.Args(container0))
            Assert.Contains(arg.Split('=')[0], help);
        output.WriteLine(image.BuildLog.Split('\n')[^1]);
    }

    [Fact]
    public async Task Agent_from_the_image_installs_binaries_and_the_conflist_atomically_and_a_restart_changes_nothing()
    {
        var docs = DeployFiles.Manifest();
        var spec = DeployFiles.AgentContainer(docs);
        var healthzPort = int.Parse(DeployFiles.Flag(spec, "--healthz-port")!);
        var node = RunScope.NewName();
        var token = RunScope.NewContainerId("token");

        using var ns = await TestNetNs.Create();
        (await Sh.Ip(ns.Name, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0peer")).EnsureOk();   // no dummy module here
        (await Sh.Ip(ns.Name, "link", "set", "eth0peer", "up")).EnsureOk();
        (await Sh.Ip(ns.Name, "addr", "add", "192.0.2.10/24", "dev", "eth0")).EnsureOk();
        (await Sh.Ip(ns.Name, "link", "set", "eth0", "up")).EnsureOk();
        using var netns = NetNsHandle.Open(ns.Path);
        // https, as a real API server: the agent needs the image's libssl/libcrypto and the kubeconfig's CA.
        using var tls = FakeKubeApiTls.Create();
        using var api = new FakeKubeApi(netns.RunInside(() => FakeKubeApi.CreateListener(IPAddress.Loopback)), token, tls);
        api.AddNode(node, [], "192.0.2.10");   // no podCIDR yet

        // The node's host dirs. Seeded as a node may have them: an outdated podbridge (replaced), a podbridge-ipam
        // identical to ours (left alone), the node's own portmap (kept: a node's copy wins); no loopback (installed).
        var host = RunScope.NewTempDir("node");
        var bin = Directory.CreateDirectory(Path.Combine(host, "opt-cni-bin")).FullName;
        var conf = Directory.CreateDirectory(Path.Combine(host, "etc-cni-net.d")).FullName;
        var data = Directory.CreateDirectory(Path.Combine(host, "var-lib-cni")).FullName;
        var kubeconfig = api.WriteKubeconfig(Path.Combine(host, "kubeconfig"));
        await File.WriteAllTextAsync(Path.Combine(bin, "podbridge"), "an older podbridge\n");
        File.Copy(NodeImage.SourceOf("podbridge-ipam"), Path.Combine(bin, "podbridge-ipam"));
        await File.WriteAllTextAsync(Path.Combine(bin, "portmap"), "the node's own portmap\n");
        var oldPodBridge = Identity(Path.Combine(bin, "podbridge"));
        var seededIpam = Identity(Path.Combine(bin, "podbridge-ipam"));
        var nodePortmap = Identity(Path.Combine(bin, "portmap"));

        var hostPathFor = new Dictionary<string, string>
        {
            ["/opt/cni/bin"] = bin, ["/etc/cni/net.d"] = conf, ["/var/lib/cni"] = data, ["/lib/x86_64-linux-gnu/libc.so.6"] = Libc,
        };
        var run = new List<string>
        {
            "run", "--detach", "--name", RunScope.NewName(), "--network", $"ns:{ns.Path}",
            "--env", $"NODE_NAME={node}", "--env", "KUBECONFIG=/etc/podbridge-test/kubeconfig",
            "--volume", $"{kubeconfig}:/etc/podbridge-test/kubeconfig:ro",
        };
        foreach (var m in DeployFiles.HostMounts(docs))
            run.AddRange(["--volume", $"{hostPathFor[m.HostPath]}:{m.MountPath}{(m.ReadOnly ? ":ro" : "")}"]);
        var sc = spec["securityContext"]!;
        Assert.Equal(["ALL"], sc["capabilities"]!["drop"]!.AsArray().Select(c => (string)c!));
        run.AddRange(["--cap-drop", "ALL"]);
        foreach (var cap in sc["capabilities"]!["add"]!.AsArray()) run.AddRange(["--cap-add", (string)cap!]);
        if ((bool?)sc["readOnlyRootFilesystem"] == true) run.AddRange(["--read-only", "--read-only-tmpfs=false"]);   // as kubelet: no tmpfs added
        if ((bool?)sc["allowPrivilegeEscalation"] == false) run.AddRange(["--security-opt", "no-new-privileges"]);
        run.AddRange(["--user", $"{(long?)sc["runAsUser"] ?? 0}:{(long?)sc["runAsGroup"] ?? 0}"]);
        run.Add(image.Tag);
        run.AddRange(DeployFiles.Args(spec));
        var name = run[3];

        try
        {
            // A reader, as kubelet exec'ing the plugin, sees the old podbridge or the new one, whole: never a
            // missing, empty or half-written file.
            var podbridge = await File.ReadAllBytesAsync(NodeImage.SourceOf("podbridge"));
            var oldBytes = await File.ReadAllBytesAsync(Path.Combine(bin, "podbridge"));
            var binaryReads = await Observe(Path.Combine(bin, "podbridge"), b => b is null ? "missing"
                : b.AsSpan().SequenceEqual(podbridge) ? "new" : b.AsSpan().SequenceEqual(oldBytes) ? "old" : $"{b.Length} other bytes");

            var started = Stopwatch.StartNew();
            (await image.Podman.Podman([.. run])).EnsureOk();

            // Binaries first, conflist only once the node has a podCIDR; not ready until then.
            await Until(() => File.Exists(Path.Combine(bin, "loopback")) && File.ReadAllBytes(Path.Combine(bin, "podbridge")).SequenceEqual(podbridge),
                "binaries installed", name);
            var seen = await binaryReads;
            output.WriteLine($"reads of podbridge during the install: {string.Join(", ", seen.Select(kv => $"{kv.Key} {kv.Value}"))}");
            Assert.Equal(["new", "old"], seen.Keys.Order());
            var (status, body) = await Until(() => Healthz(netns, healthzPort), "healthz answering", name);
            Assert.Equal(503, status);
            output.WriteLine($"before podCIDRs: /healthz {status} {body.Trim()}");
            Assert.Empty(Directory.GetFiles(conf));

            var allocated = Stopwatch.StartNew();
            api.UpdateNode(node, podCidrs: ["10.244.7.0/24"]);
            await Until(async () => (await Healthz(netns, healthzPort))?.Status == 200, "ready after the podCIDR", name);
            output.WriteLine($"agent start to ready: {started.ElapsedMilliseconds} ms; podCIDR set to ready: {allocated.ElapsedMilliseconds} ms");

            foreach (var b in NodeImage.Shipped.Where(b => b != "podbridge-node" && b != "portmap"))
            {
                Assert.Equal(await File.ReadAllBytesAsync(NodeImage.SourceOf(b)), await File.ReadAllBytesAsync(Path.Combine(bin, b)));
                Assert.True(File.GetUnixFileMode(Path.Combine(bin, b)).HasFlag(UnixFileMode.OtherExecute), $"{b} is not executable");
            }
            // Replaced by rename (a new inode), never rewritten in place; equal content and the node's own portmap untouched.
            Assert.NotEqual(oldPodBridge.Inode, Identity(Path.Combine(bin, "podbridge")).Inode);
            Assert.Equal(seededIpam, Identity(Path.Combine(bin, "podbridge-ipam")));
            Assert.Equal(nodePortmap, Identity(Path.Combine(bin, "portmap")));
            Assert.Equal(["loopback", "podbridge", "podbridge-ipam", "portmap"], Names(bin));   // no temp files left

            var conflistPath = Assert.Single(Directory.GetFiles(conf));
            Assert.EndsWith(".conflist", conflistPath);
            var conflist = JsonNode.Parse(await File.ReadAllTextAsync(conflistPath))!;
            var plugins = conflist["plugins"]!.AsArray();
            Assert.Equal(["podbridge", "portmap"], plugins.Select(p => (string)p!["type"]!));
            var ipam = plugins[0]!["ipam"]!;
            Assert.Equal("10.244.7.0/24", (string?)ipam["ranges"]![0]![0]!["subnet"]);
            Assert.Equal(DeployFiles.Flag(spec, "--data-dir"), (string?)ipam["dataDir"]);
            Assert.True((bool?)plugins[1]!["capabilities"]!["portMappings"]);
            Assert.NotEqual(true, (bool?)plugins[0]!["ipMasq"]);

            var pid = (await image.Podman.Podman("inspect", "--format", "{{.State.Pid}}", name)).EnsureOk().Stdout.Trim();
            var peakKiB = long.Parse((await File.ReadAllLinesAsync($"/proc/{pid}/status")).Single(l => l.StartsWith("VmHWM:"))
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
            var limit = (string)spec["resources"]!["limits"]!["memory"]!;
            output.WriteLine($"agent peak RSS {peakKiB / 1024.0:F1} MiB (limit {limit})");
            Assert.True(peakKiB * 1024 < MebiBytes(limit), $"the agent's peak RSS {peakKiB} KiB exceeds the manifest's limit {limit}");

            // SIGTERM: exits 0 and leaves everything in place.
            var before = Snapshot(bin, conf);
            (await image.Podman.Podman("stop", "--time", "10", name)).EnsureOk();
            Assert.Equal("0", (await image.Podman.Podman("inspect", "--format", "{{.State.ExitCode}}", name)).EnsureOk().Stdout.Trim());
            Assert.Equal(before, Snapshot(bin, conf));

            // A restart with nothing changed rewrites nothing (same inodes, same mtimes).
            var requestsBefore = api.Requests.Count;
            (await image.Podman.Podman("start", name)).EnsureOk();
            await Until(async () => (await Healthz(netns, healthzPort))?.Status == 200, "ready after the restart", name);
            Assert.True(api.Requests.Count > requestsBefore, "the restarted agent never asked the API server");
            Assert.Equal(before, Snapshot(bin, conf));

            // A podCIDR change rewrites the conflist, again by rename: readers see the old or the new document.
            var conflistReads = await Observe(conflistPath, b =>
            {
                if (b is null) return "missing";
                try
                {
                    var subnet = (string?)JsonNode.Parse(b)!["plugins"]![0]!["ipam"]!["ranges"]![0]![0]!["subnet"];
                    return subnet == "10.244.9.0/24" ? "new" : subnet == "10.244.7.0/24" ? "old" : $"subnet {subnet}";
                }
                catch (System.Text.Json.JsonException)
                {
                    return $"{b.Length} bytes of broken JSON";
                }
            });
            api.UpdateNode(node, podCidrs: ["10.244.9.0/24"]);
            var rewrites = await conflistReads;
            Assert.Equal(["new", "old"], rewrites.Keys.Order());
            Assert.NotEqual(before[conflistPath].Inode, Identity(conflistPath).Inode);
            Assert.Equal([Path.GetFileName(conflistPath)], Names(conf));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException || !e.Message.Contains("podman logs"))
        {
            throw new Xunit.Sdk.XunitException($"{e}\n--- podman logs {name}:\n{await Logs(name)}\n--- API requests:\n{string.Join('\n', api.Requests)}");
        }
        finally
        {
            await image.Podman.Podman("rm", "--force", "--time", "0", name);
            RunScope.TryDeleteDirectory(host);
        }
    }

    /// <summary>
    /// Reads <paramref name="path"/> in a loop on a thread of its own until <paramref name="classify"/> says "new"
    /// (or 60 s pass); returns how often each class was seen. The content is null while the file does not exist.
    /// </summary>
    private static async Task<Task<Dictionary<string, int>>> Observe(string path, Func<byte[]?, string> classify)
    {
        var firstRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reads = Task.Factory.StartNew(() =>
        {
            var seen = new Dictionary<string, int>();
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(60))
            {
                byte[]? content;
                try { content = File.ReadAllBytes(path); }
                catch (FileNotFoundException) { content = null; }
                var key = classify(content);
                seen[key] = seen.GetValueOrDefault(key) + 1;
                firstRead.TrySetResult();
                if (key == "new") break;
            }
            return seen;
        }, TaskCreationOptions.LongRunning);
        await firstRead.Task;   // the reader is running before the caller changes anything
        return reads;
    }

    private async Task<string> Logs(string container)
    {
        var r = await image.Podman.Podman("logs", container);
        return r.Stdout + r.Stderr;
    }

    private static long MebiBytes(string quantity) =>
        quantity.EndsWith("Mi", StringComparison.Ordinal) ? long.Parse(quantity[..^2]) << 20
        : quantity.EndsWith("Gi", StringComparison.Ordinal) ? long.Parse(quantity[..^2]) << 30
        : throw new Xunit.Sdk.XunitException($"unexpected memory quantity {quantity}");

    private static (ulong Inode, DateTime Modified) Identity(string path)
    {
        var inode = ulong.Parse(Sh.Run("stat", "-c", "%i", path).GetAwaiter().GetResult().EnsureOk().Stdout.Trim());
        return (inode, File.GetLastWriteTimeUtc(path));
    }

    private static Dictionary<string, (ulong Inode, DateTime Modified)> Snapshot(params string[] dirs) =>
        dirs.SelectMany(Directory.GetFiles).Order().ToDictionary(f => f, Identity);

    private static List<string> Names(string dir) => [.. Directory.GetFiles(dir).Select(Path.GetFileName).OfType<string>().Order()];

    /// <summary>GET /healthz through a socket opened inside the node's namespace; null while nothing listens.</summary>
    private static async Task<(int Status, string Body)?> Healthz(NetNsHandle netns, int port)
    {
        using var socket = netns.RunInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            await socket.SendAsync("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"u8.ToArray());
            var response = new MemoryStream();
            var buffer = new byte[1024];
            int n;
            while ((n = await socket.ReceiveAsync(buffer)) > 0) response.Write(buffer, 0, n);
            var text = Encoding.ASCII.GetString(response.ToArray());
            var status = int.Parse(text.Split(' ', 3)[1]);
            var bodyAt = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            return (status, bodyAt < 0 ? "" : text[(bodyAt + 4)..]);
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private Task Until(Func<bool> condition, string what, string container) =>
        Until(() => Task.FromResult(condition()), what, container);

    private async Task Until(Func<Task<bool>> condition, string what, string container)
    {
        await Until<bool>(async () => await TryCondition(condition) ? true : null, what, container);
    }

    /// <summary>Polls every 50 ms for up to 60 s; fails at once, with the agent's log, when the agent has exited.</summary>
    private async Task<T> Until<T>(Func<Task<T?>> probe, string what, string container) where T : struct
    {
        var deadline = Stopwatch.StartNew();
        for (var i = 1; ; i++)
        {
            if (await probe() is { } value) return value;
            var exited = i % 20 == 0 &&
                (await image.Podman.Podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container)).Stdout.Trim() is var state &&
                state.StartsWith("exited", StringComparison.Ordinal);
            if (exited || deadline.Elapsed > TimeSpan.FromSeconds(60))
                throw new Xunit.Sdk.XunitException(
                    $"not {what} {(exited ? "before the agent exited" : "within 60 s")}\n--- podman logs {container}:\n{await Logs(container)}");
            await Task.Delay(50);
        }
    }

    private static async Task<bool> TryCondition(Func<Task<bool>> condition)
    {
        try { return await condition(); }
        catch (IOException) { return false; }   // a file between rename steps, or not there yet
    }
}
