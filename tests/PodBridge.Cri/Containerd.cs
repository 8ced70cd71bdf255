using System.Diagnostics;
using System.Text;
using Grpc.Core;
using PodBridge.Cri.V1;

namespace PodBridge.Cri;

/// <summary>One CNI network containerd's CRI offers, selected by RunPodSandbox's runtime_handler (a RuntimeClass).</summary>
/// <param name="Handler">Runtime handler name; its CNI conf dir holds exactly <paramref name="Conflist"/>.</param>
/// <param name="Conflist">The .conflist JSON, as an operator would drop it into /etc/cni/net.d.</param>
public sealed record CriNetwork(string Handler, string Conflist);

/// <summary>What a private containerd is started with.</summary>
/// <param name="Dir">
/// Owned by this instance: config, root, state, sockets, CNI dirs and logs live below it; ForceCleanup deletes it.
/// Keep it short: the grpc socket path must fit sockaddr_un (108 bytes).
/// </param>
/// <param name="CniBinaries">Plugin name → binary, copied into the CRI plugin's bin_dir (ours, loopback, portmap...).</param>
/// <param name="Networks">The first is also the default runtime's network (runtime_handler "").</param>
public sealed record ContainerdOptions(
    string Dir,
    IReadOnlyDictionary<string, string> CniBinaries,
    IReadOnlyList<CriNetwork> Networks);

/// <summary>
/// A containerd of our own, started from Debian's package with a config that keeps every path under
/// <see cref="ContainerdOptions.Dir"/>, so it never meets the node's containerd (if any) or another test run's.
/// Owns its lifecycle the way TestNetNs owns a namespace: Start, crash (SIGKILL) and restart on demand,
/// DisposeAsync stops and removes every sandbox through CRI, then <see cref="ForceCleanup"/> removes whatever is
/// left (shims, containers, mounts, netns, cgroups, the directory) — the same routine a later run uses on the
/// directory of a run that was killed.
/// </summary>
public sealed class Containerd : IAsyncDisposable
{
    /// <summary>The image name sandboxes run; imported from a locally built archive, never pulled.</summary>
    public const string PauseImageRef = "localhost/podbridge/pause:1";

    private const string PidFile = "containerd.pid";
    private int _disposed;

    private Containerd(ContainerdOptions options)
    {
        Options = options;
        Client = new CriClient(SocketPath);
    }

    public ContainerdOptions Options { get; }
    public string Dir => Options.Dir;
    public string SocketPath => Path.Combine(Dir, "containerd.sock");
    public string ConfigPath => Path.Combine(Dir, "config.toml");
    public string LogPath => Path.Combine(Dir, "containerd.log");
    public string CniBinDir => Path.Combine(Dir, "cni-bin");
    public string RuncRoot => Path.Combine(Dir, "runc");

    /// <summary>Where containerd's CRI bind-mounts pod network namespaces (netns_mounts_under_state_dir).</summary>
    public string NetnsDir => Path.Combine(Dir, "state", "io.containerd.grpc.v1.cri", "netns");

    /// <summary>
    /// The cgroupfs parent to give sandboxes (PodSandboxConfig.linux.cgroup_parent, kubelet's kubepods slice):
    /// named after the run dir, so cleanup knows it from the dir alone.
    /// </summary>
    public string CgroupParent => CgroupParentOf(Dir);

    private static string CgroupParentOf(string dir) => "/" + Path.GetFileName(dir.TrimEnd('/'));

    public CriClient Client { get; private set; }
    public RuntimeService.RuntimeServiceClient Runtime => Client.Runtime;

    /// <summary>The running containerd process id (0 after <see cref="Kill"/>).</summary>
    public int Pid { get; private set; }

    public string CniConfDir(CriNetwork network) => Path.Combine(Dir, "cni-conf", network.Handler);

    /// <summary>Writes config, CNI dirs and the pause image, starts containerd and imports the image.</summary>
    public static async Task<Containerd> Start(ContainerdOptions options, CancellationToken ct = default)
    {
        if (Encoding.UTF8.GetByteCount(Path.Combine(options.Dir, "containerd.sock.ttrpc")) >= 108)
            throw new ArgumentException($"containerd dir {options.Dir} is too long for a unix socket path");
        if (options.Networks.Count == 0) throw new ArgumentException("at least one CNI network is needed");
        foreach (var tool in new[] { "/usr/bin/containerd", "/usr/bin/ctr", "/usr/bin/containerd-shim-runc-v2", "/usr/sbin/runc" })
            if (!File.Exists(tool))
                throw new FileNotFoundException($"{tool} is missing; install Debian's containerd and runc packages (test.sh does)", tool);

        var c = new Containerd(options);
        try
        {
            // Before portmap can run: what of its shared host NAT state exists already (the record sits next to the dir).
            HostPortmapState.Acquire(options.Dir.TrimEnd('/') + HostPortmapState.RecordSuffix);
            c._hostNatAcquired = true;
            Directory.CreateDirectory(c.CniBinDir);
            foreach (var (name, source) in options.CniBinaries)
                File.Copy(source, Path.Combine(c.CniBinDir, name), overwrite: true);
            foreach (var network in options.Networks)
            {
                Directory.CreateDirectory(c.CniConfDir(network));
                await File.WriteAllTextAsync(Path.Combine(c.CniConfDir(network), "10-podbridge-test.conflist"), network.Conflist, ct);
            }
            await File.WriteAllTextAsync(c.ConfigPath, ContainerdConfig.Render(c), ct);

            await c.StartProcess(ct);
            var archive = Path.Combine(options.Dir, "pause.tar");
            PauseImage.WriteArchive(archive, PauseImageRef);
            await c.Ctr(ct, "images", "import", "--snapshotter", ContainerdConfig.Snapshotter, archive);
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGKILL containerd, as a crash or an OOM kill would: shims and sandboxes keep running.</summary>
    public async Task Kill()
    {
        if (Pid == 0) return;
        using (var p = TryGetProcess(Pid))
        {
            if (p is not null)
            {
                p.Kill();
                await p.WaitForExitAsync();
            }
        }
        Pid = 0;
    }

    /// <summary>Starts containerd again with the same config and state (what systemd does after a crash).</summary>
    public async Task Restart(CancellationToken ct = default)
    {
        if (Pid != 0) throw new InvalidOperationException("containerd is still running");
        // A fresh channel: the old one's HTTP/2 connection went down with the process.
        Client.Dispose();
        Client = new CriClient(SocketPath);
        await StartProcess(ct);
    }

    private async Task StartProcess(CancellationToken ct)
    {
        // Through sh so containerd writes its log straight to a file: a pipe to this process would break (SIGPIPE)
        // if the test host died first, taking containerd's cleanup story with it.
        var psi = new ProcessStartInfo("/bin/sh")
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
        };
        // containerd finds its shim, and libcni's plugins (portmap) find iptables, through PATH: do not depend on
        // the caller's (a CI runner's may lack the sbin dirs).
        psi.Environment["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("exec /usr/bin/containerd --config \"$1\" >>\"$2\" 2>&1");
        psi.ArgumentList.Add("containerd");
        psi.ArgumentList.Add(ConfigPath);
        psi.ArgumentList.Add(LogPath);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start containerd");
        p.StandardInput.Close();
        Pid = p.Id;
        await File.WriteAllTextAsync(Path.Combine(Dir, PidFile), Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);

        // Ready = the CRI answers Status with RuntimeReady and NetworkReady (our default conflist loaded).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string last = "no answer yet";
        while (true)
        {
            if (p.HasExited)
                throw new InvalidOperationException($"containerd exited with {p.ExitCode} at start; log:\n{Tail(LogPath)}");
            if (File.Exists(SocketPath))
            {
                try
                {
                    var status = await Runtime.StatusAsync(new StatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: ct);
                    var conditions = status.Status.Conditions;
                    if (conditions.Count > 0 && conditions.All(x => x.Status)) return;
                    last = string.Join("; ", conditions.Select(x => $"{x.Type}={x.Status} {x.Reason} {x.Message}"));
                }
                catch (RpcException e)
                {
                    last = e.Status.Detail;
                }
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"containerd not ready within 30s ({last}); log:\n{Tail(LogPath)}");
            await Task.Delay(50, ct);
        }
    }

    /// <summary>`ctr --address SOCK -n k8s.io ARGS` (the CRI's namespace), throwing with its output on failure.</summary>
    public async Task<string> Ctr(CancellationToken ct, params string[] args)
    {
        var psi = new ProcessStartInfo("/usr/bin/ctr")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in (string[])["--address", SocketPath, "--namespace", "k8s.io", .. args]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync(ct);
        var stderr = p.StandardError.ReadToEndAsync(ct);
        await p.WaitForExitAsync(ct);
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"ctr {string.Join(' ', args)} exited {p.ExitCode}: {await stderr}");
        return await stdout;
    }

    /// <summary>The last lines of containerd's log, for failure messages.</summary>
    public string LogTail(int lines = 40) => Tail(LogPath, lines);

    private static string Tail(string path, int lines = 40)
    {
        try { return string.Join('\n', File.ReadLines(path).TakeLast(lines)); }
        catch (IOException) { return "(no log)"; }
    }

    /// <summary>
    /// Stops and removes every sandbox through CRI (so the CNI DELs run and leases are released), stops containerd,
    /// then removes everything else it left.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            if (Pid != 0)
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                try
                {
                    var list = await Runtime.ListPodSandboxAsync(new ListPodSandboxRequest(), cancellationToken: cts.Token);
                    foreach (var sandbox in list.Items)
                    {
                        await Runtime.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = sandbox.Id }, cancellationToken: cts.Token);
                        await Runtime.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = sandbox.Id }, cancellationToken: cts.Token);
                    }
                }
                catch (Exception e) when (e is RpcException or OperationCanceledException)
                {
                    Console.Error.WriteLine($"containerd {Dir}: CRI cleanup failed ({e.Message}); forcing");
                }
                using var p = TryGetProcess(Pid);
                if (p is not null)
                {
                    p.Kill(); // SIGKILL: state is on disk, and ForceCleanup handles what a crash would leave.
                    await p.WaitForExitAsync();
                }
                Pid = 0;
            }
        }
        finally
        {
            Client.Dispose();
            try { ForceCleanup(Dir); }
            finally
            {
                if (_hostNatAcquired) HostNatLeftOver = HostPortmapState.Release();
            }
        }
    }

    private bool _hostNatAcquired;

    /// <summary>
    /// After <see cref="DisposeAsync"/>: the shared host NAT state portmap created while this process's containerds ran
    /// and that could not be removed (empty when it was, or when another containerd of this process still runs).
    /// </summary>
    public IReadOnlyList<string> HostNatLeftOver { get; private set; } = [];

    private static Process? TryGetProcess(int pid)
    {
        try
        {
            var p = Process.GetProcessById(pid);
            if (!p.HasExited) return p;
            p.Dispose();
            return null;
        }
        catch (ArgumentException) { return null; }
    }

    /// <summary>
    /// Removes everything a containerd started from <paramref name="dir"/> may have left, whether it was stopped,
    /// killed, or its test run died: only objects provably its own are touched — the containerd whose command line
    /// names this dir's config, the shims serving this dir's socket, the containers in this dir's runc root, mounts
    /// below this dir (rootfs, pod netns), and the dir itself. Synchronous: it also runs from ProcessExit.
    /// </summary>
    public static void ForceCleanup(string dir)
    {
        var config = Path.Combine(dir, "config.toml");
        var socket = Path.Combine(dir, "containerd.sock");
        var sandboxIds = SandboxIds(dir);
        var errors = new List<string>();
        // Every step runs even when an earlier one failed: a half-done sweep must not strand the rest.
        void Step(string what, Action action)
        {
            try { action(); }
            catch (Exception e) { errors.Add($"{what}: {e.Message}"); }
        }

        Step("processes", () =>
        {
            foreach (var pid in ProcessesWhoseCommandLine(args =>
                         (args.FirstOrDefault()?.EndsWith("containerd", StringComparison.Ordinal) == true && args.Contains(config)) ||
                         (args.FirstOrDefault()?.Contains("containerd-shim", StringComparison.Ordinal) == true && args.Contains(socket))))
                KillQuietly(pid);
        });

        // Sandboxes outlive their shim: runc's own record of them is under our root.
        Step("sandboxes", () =>
        {
            var runcRoot = Path.Combine(dir, "runc");
            if (Directory.Exists(runcRoot))
                foreach (var ns in Directory.GetDirectories(runcRoot))
                    foreach (var id in Directory.GetDirectories(ns).Select(Path.GetFileName))
                        Run("/usr/sbin/runc", "--root", ns, "delete", "--force", id!);
        });

        // Deepest first: the netns files and rootfs mounts live below the state dir.
        Step("mounts", () =>
        {
            var prefix = dir.TrimEnd('/') + "/";
            foreach (var mount in MountPoints().Where(m => m.StartsWith(prefix, StringComparison.Ordinal)).OrderByDescending(m => m.Length))
                Run("/usr/bin/umount", "--lazy", mount);
        });

        Step("cgroups", () => RemoveCgroup(CgroupParentOf(dir)));

        // portmap's per-pod NAT rules name the sandbox id in their comment.
        Step("portmap rules", () => RemovePortmapRules(line => sandboxIds.Any(id => line.Contains($"id: \\\"{id}\\\"", StringComparison.Ordinal))));

        Step("shim sockets and CNI cache", () =>
        {
            foreach (var id in sandboxIds)
            {
                // A shim killed before it could clean up leaves its socket in /run/containerd/s, named (containerd
                // 1.6, runtime/v2/shim SocketAddress) by sha256 of "<containerd address>/<namespace>/<id>".
                var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(
                    Encoding.UTF8.GetBytes($"{socket}/k8s.io/{id}")));
                TryDeleteFile(Path.Combine("/run/containerd/s", hash));
                // libcni's result cache (containerd's go-cni keeps it in /var/lib/cni): "<network>-<id>-<ifname>".
                if (Directory.Exists(CniResultsDir))
                    foreach (var cached in Directory.GetFiles(CniResultsDir, $"*-{id}-*"))
                        TryDeleteFile(cached);
            }
        });

        Step("directory", () =>
        {
            try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Run("/bin/rm", "-rf", dir);
            }
        });

        if (errors.Count > 0)
            throw new IOException($"cleanup of containerd dir {dir} incomplete: {string.Join("; ", errors)}");
    }

    private const string CniResultsDir = "/var/lib/cni/results";

    /// <summary>
    /// Instance dirs in <paramref name="parent"/> whose name starts with <paramref name="namePrefix"/> and ends with
    /// "-containerd": those on disk, and those a still running containerd was started from (its dir may be gone).
    /// </summary>
    public static IReadOnlyList<string> InstanceDirs(string parent, string namePrefix)
    {
        bool Ours(string dir) =>
            Path.GetDirectoryName(dir.TrimEnd('/')) == parent.TrimEnd('/') &&
            Path.GetFileName(dir.TrimEnd('/')) is var n && n.StartsWith(namePrefix, StringComparison.Ordinal) &&
            n.EndsWith("-containerd", StringComparison.Ordinal);
        var dirs = Directory.GetDirectories(parent, namePrefix + "*-containerd").ToList();
        foreach (var pid in ProcessesWhoseCommandLine(a => a.FirstOrDefault()?.EndsWith("containerd", StringComparison.Ordinal) == true))
        {
            try
            {
                var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                var i = Array.IndexOf(args, "--config");
                if (i >= 0 && i + 1 < args.Length && Path.GetFileName(args[i + 1]) == "config.toml" && Path.GetDirectoryName(args[i + 1]) is { } d && Ours(d))
                    dirs.Add(d);
            }
            catch (IOException) { }
        }
        return dirs.Select(d => d.TrimEnd('/')).Distinct().ToList();
    }

    /// <summary>Sandbox ids this instance knows of: shim bundles and runc state, both under its dir.</summary>
    private static List<string> SandboxIds(string dir)
    {
        var ids = new List<string>();
        foreach (var parent in new[] { Path.Combine(dir, "state", "io.containerd.runtime.v2.task", "k8s.io"), Path.Combine(dir, "runc", "k8s.io") })
            if (Directory.Exists(parent))
                ids.AddRange(Directory.GetDirectories(parent).Select(Path.GetFileName).OfType<string>());
        // Ids are containerd's 64-hex sandbox ids: anything else is not something to match files with.
        return ids.Distinct().Where(id => id.Length == 64 && id.All(char.IsAsciiHexDigitLower)).ToList();
    }

    /// <summary>
    /// portmap's NAT rules left where no DEL ran (a killed run): a pod's chain CNI-DN-… and the jump to it in
    /// CNI-HOSTPORT-DNAT, whose comment names network and container (`dnat name: "NET" id: "ID"`); removed for the
    /// jump rules <paramref name="isOurs"/> accepts (it sees the iptables-save line). portmap's shared chains
    /// (CNI-HOSTPORT-*) stay: other pods on the node use them.
    /// </summary>
    public static void RemovePortmapRules(Func<string, bool> isOurs)
    {
        foreach (var tool in new[] { "iptables", "ip6tables" })
        {
            var saved = RunOutput($"/usr/sbin/{tool}-save", "-t", "nat");
            if (saved is null) continue;
            var script = new StringBuilder("*nat\n");
            var chains = new List<string>();
            foreach (var line in saved.Split('\n'))
            {
                if (!line.StartsWith("-A ", StringComparison.Ordinal) || !line.Contains("dnat name: ", StringComparison.Ordinal) || !isOurs(line))
                    continue;
                script.Append("-D ").Append(line.AsSpan(3)).Append('\n');
                var jump = line.LastIndexOf(" -j ", StringComparison.Ordinal);
                if (jump >= 0 && line[(jump + 4)..].Trim() is var target && target.StartsWith("CNI-DN-", StringComparison.Ordinal))
                    chains.Add(target);
            }
            if (chains.Count == 0 && script.Length == "*nat\n".Length) continue;
            foreach (var chain in chains.Distinct()) script.Append($"-F {chain}\n-X {chain}\n");
            script.Append("COMMIT\n");
            RunWithInput($"/usr/sbin/{tool}-restore", script.ToString(), "--noflush");
        }
    }

    private static string? RunOutput(string file, params string[] args) => RunWithInput(file, null, args);

    /// <summary>Runs a tool, feeding <paramref name="stdin"/>; its stdout when it exits 0, else null (also when it is missing).</summary>
    internal static string? RunWithInput(string file, string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            if (stdin is not null)
            {
                p.StandardInput.Write(stdin);
                p.StandardInput.Close();
            }
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(30_000)) p.Kill(entireProcessTree: true);
            return p.ExitCode == 0 ? stdout : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    private static void TryDeleteFile(string path)
    {
        try { File.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Removes an (empty) cgroupfs parent in every v1 controller and the unified hierarchy.</summary>
    public static void RemoveCgroup(string parent)
    {
        var rel = parent.Trim('/');
        if (rel.Length == 0 || rel.Contains("..", StringComparison.Ordinal)) return;
        foreach (var hierarchy in Directory.Exists("/sys/fs/cgroup") ? Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup") : [])
        {
            var path = Path.Combine(hierarchy, rel);
            if (!Directory.Exists(path)) continue;
            // Children first (a sandbox's own cgroup if runc could not delete it); rmdir fails while a process is in it.
            foreach (var child in Directory.GetDirectories(path, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
                TryRmdir(child);
            TryRmdir(path);
        }
    }

    private static void TryRmdir(string path)
    {
        try { Directory.Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static List<string> MountPoints()
    {
        // /proc/self/mountinfo field 5 is the mount point, with spaces etc. octal-escaped.
        return File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 4)
            .Select(f => f[4].Replace("\\040", " ", StringComparison.Ordinal))
            .ToList();
    }

    internal static List<int> ProcessesWhoseCommandLine(Func<string[], bool> match)
    {
        var pids = new List<int>();
        foreach (var procDir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(procDir), out var pid)) continue;
            try
            {
                var args = File.ReadAllText(Path.Combine(procDir, "cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
                if (args.Length > 0 && match(args)) pids.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return pids;
    }

    private static void KillQuietly(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            p.Kill();
            p.WaitForExit(5000);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception) { }
    }

    private static void Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            p.StandardOutput.ReadToEnd();
            p.StandardError.ReadToEnd();
            if (!p.WaitForExit(30_000)) p.Kill(entireProcessTree: true);
        }
        catch (System.ComponentModel.Win32Exception) { }
    }
}
