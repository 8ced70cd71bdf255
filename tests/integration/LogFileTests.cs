using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The log file is shared by every plugin process on the node; runtimes start them in parallel. Each process
/// must append its lines without ever overwriting another's.
/// </summary>
public sealed class LogFileTests
{
    [Fact]
    public async Task ConcurrentInvocations_AppendEveryLine_NoneOverwritten()
    {
        var dir = RunScope.NewTempDir("log");
        try
        {
            var logFile = Path.Combine(dir, "podbridge.log");
            // CHECK on a 0.3.1 config fails right after parsing (code 1): no kernel or IPAM work, only logging.
            var stdin = $"{{\"cniVersion\":\"0.3.1\",\"name\":\"logtest\",\"type\":\"podbridge\",\"logFile\":\"{logFile}\"}}";
            const int processes = 48;
            var runs = Enumerable.Range(0, processes).Select(i => PluginRunner.Run(Binaries.PodBridge, new CniCall("CHECK")
            {
                ContainerId = $"logtest{i:d3}",
                NetNs = "/proc/self/ns/net",
                IfName = "eth0",
                Stdin = stdin,
            }));
            var outcomes = await Task.WhenAll(runs);
            Assert.All(outcomes, o => o.AssertError(1));

            var lines = await File.ReadAllLinesAsync(logFile);
            Assert.Equal(processes, lines.Length);
            for (var i = 0; i < processes; i++)
            {
                var mine = lines.Where(l => l.Contains($" CHECK logtest{i:d3}/eth0 ")).ToList();
                var line = Assert.Single(mine);
                Assert.Matches(@"^\d{4}-\d\d-\d\dT[\d:.]+Z \d+ podbridge CHECK \S+ error failed with code 1 in [\d.]+ms: ", line);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
