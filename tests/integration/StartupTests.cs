using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// How the published CNI executables start (README "Start-up flags and ASLR"): statically linked, and without the
/// .NET runtime's cgroup probe, whose cost grows with the node's mount table (one netns bind mount per pod and more).
/// </summary>
public sealed class StartupTests
{
    public static TheoryData<string> Plugins => new() { Binaries.PodBridgeName, Binaries.PodBridgeIpamName };

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task A_verb_neither_reads_the_mount_table_nor_asks_for_the_cgroup_file_system(string plugin)
    {
        var binary = Binaries.Require(Binaries.PodBridgeDir, plugin);
        var trace = Path.Combine(RunScope.NewTempDir("strace"), "trace");
        try
        {
            var r = await Sh.Run("strace", ["-f", "-qq", "-o", trace, "-e", "trace=open,openat,statfs,fstatfs", binary],
                stdin: """{"cniVersion":"1.0.0","name":"n","type":"podbridge"}""",
                env: new Dictionary<string, string?> { ["CNI_COMMAND"] = "VERSION" });
            r.EnsureOk();
            Assert.Contains("supportedVersions", r.Stdout);
            var calls = await File.ReadAllTextAsync(trace);
            // The trace is real: the runtime's other start-up reads (CPU topology) are in it.
            Assert.Contains("/sys/devices/system/cpu", calls);
            Assert.DoesNotContain("/proc/self/mountinfo", calls);
            Assert.DoesNotContain("/proc/self/cgroup", calls);
            Assert.DoesNotContain("\"/sys/fs/cgroup", calls);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(trace)!, recursive: true);
        }
    }

    [Theory]
    [MemberData(nameof(Plugins))]
    public async Task The_executable_is_static_and_runs_without_a_dynamic_loader(string plugin)
    {
        var binary = Binaries.Require(Binaries.PodBridgeDir, plugin);
        var headers = (await Sh.Run("readelf", "--program-headers", "--wide", binary)).EnsureOk().Stdout;
        Assert.Contains("LOAD", headers);
        Assert.DoesNotContain("INTERP", headers);
        Assert.DoesNotContain("DYNAMIC", headers);
    }
}
