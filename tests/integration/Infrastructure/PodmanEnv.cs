using System.Text.Json.Nodes;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>
/// A private podman (4.x, CNI backend through libcni) that touches nothing global: its own containers.conf
/// (CONTAINERS_CONF), storage root, run root and network config dir, all in one temp dir removed in Dispose.
/// Settings this VM needs: runc, cgroupfs, explicit ulimits, file event log.
/// </summary>
public sealed class PodmanEnv : IDisposable
{
    private const string ConfFile = "containers.conf";
    private int _disposed;

    private PodmanEnv(string dir) => Dir = dir;

    public string Dir { get; }
    public string NetworkDir => Path.Combine(Dir, "net");
    public string RootFs => Path.Combine(Dir, "rootfs");

    public static async Task<PodmanEnv> Create(params string[] pluginDirs)
    {
        if (!File.Exists("/usr/bin/podman")) throw new Xunit.Sdk.XunitException("podman is not installed (apt-get install podman runc)");
        var env = new PodmanEnv(RunScope.NewTempDir("podman"));
        try
        {
            Directory.CreateDirectory(env.NetworkDir);
            Directory.CreateDirectory(Path.Combine(env.Dir, "tmp"));
            var dirs = string.Join(", ", pluginDirs.Select(d => $"\"{d}\""));
            await File.WriteAllTextAsync(Path.Combine(env.Dir, ConfFile), $"""
                [containers]
                default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

                [engine]
                runtime = "runc"
                cgroup_manager = "cgroupfs"
                events_logger = "file"
                events_logfile_path = "{env.Dir}/events.log"
                tmp_dir = "{env.Dir}/tmp"

                [network]
                network_backend = "cni"
                cni_plugin_dirs = [{dirs}]
                network_config_dir = "{env.NetworkDir}"
                """);
            BuildBusyboxRootFs(env.RootFs);
            return env;
        }
        catch
        {
            env.Dispose();
            throw;
        }
    }

    /// <summary>A minimal rootfs: busybox-static and the applets the test runs.</summary>
    private static void BuildBusyboxRootFs(string rootfs)
    {
        const string busybox = "/bin/busybox";
        if (!File.Exists(busybox))
            throw new Xunit.Sdk.XunitException($"{busybox} is missing: apt-get install busybox-static");
        foreach (var d in new[] { "bin", "proc", "sys", "dev", "etc", "tmp", "run" })
            Directory.CreateDirectory(Path.Combine(rootfs, d));
        File.Copy(busybox, Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "ip", "ping", "sleep", "cat", "ifconfig", "route" })
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
    }

    /// <summary>Writes a conflist for one plugin into the private network dir; podman finds it by name.</summary>
    public async Task AddNetwork(string name, JsonObject plugin)
    {
        var p = (JsonObject)plugin.DeepClone();
        p.Remove("cniVersion");
        p.Remove("name");
        var conflist = new JsonObject
        {
            ["cniVersion"] = "1.0.0",
            ["name"] = name,
            ["plugins"] = new JsonArray(p),
        };
        await File.WriteAllTextAsync(Path.Combine(NetworkDir, $"{name}.conflist"), conflist.ToJsonString());
    }

    public Task<ShResult> Podman(params string[] args) =>
        Sh.Run("podman", [.. GlobalArgs(Dir), .. args], env: Env(Dir), timeout: TimeSpan.FromSeconds(90));

    private static string[] GlobalArgs(string dir) =>
        ["--root", Path.Combine(dir, "root"), "--runroot", Path.Combine(dir, "runroot"), "--storage-driver", "vfs"];

    private static Dictionary<string, string?> Env(string dir) => new() { ["CONTAINERS_CONF"] = Path.Combine(dir, ConfFile) };

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        ForceCleanup(Dir);
    }

    /// <summary>
    /// Removes every container of this private podman (its netns lives in /run/netns under podman's own name, so
    /// only podman can find it), then the directory. Also used by the crash sweep.
    /// </summary>
    public static void ForceCleanup(string dir)
    {
        if (File.Exists(Path.Combine(dir, ConfFile)) && File.Exists("/usr/bin/podman"))
        {
            try
            {
                Sh.Run("podman", [.. GlobalArgs(dir), "rm", "--all", "--force", "--time", "0"], env: Env(dir))
                    .GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                Console.Error.WriteLine($"podman cleanup in {dir}: {e.Message}");
            }
        }
        RunScope.TryDeleteDirectory(dir);
    }
}
