namespace PodBridge.Cni.Tests;

[Collection(ProcessWideState.Name)]
public class LogTests
{
    [Fact]
    public void Log_never_writes_to_stdout()
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var savedOut = Console.Out;
        var savedErr = Console.Error;
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            var request = new CniRequest(CniVerb.Add, "0123456789abcdef0123", "/run/netns/p", "eth0", CniArgs.Empty, [], [])
            {
                Environment = new Dictionary<string, string>(),
            };
            Log.Begin("podbridge", request);
            Log.Debug("debug-line");
            Log.Info("info-line");
            using (Log.Time("step.one")) { }
            Log.Warn("warn-line");
            Log.Error("error-line");
            Log.End(7, "boom");
            // Buffered until Flush: nothing reaches either stream before it.
            Assert.Equal("", stderr.ToString());
            Log.Flush();
            Log.Flush();
        }
        finally
        {
            Console.SetOut(savedOut);
            Console.SetError(savedErr);
        }

        Assert.Equal("", stdout.ToString());
        var lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        // stderr gets warn and above, once, with the pid / plugin / verb / short container id prefix.
        Assert.Equal(3, lines.Length);
        Assert.EndsWith($" {Environment.ProcessId} podbridge ADD 0123456789ab/eth0 warn warn-line", lines[0]);
        Assert.EndsWith(" error error-line", lines[1]);
        Assert.Contains(" error failed with code 7 in ", lines[2]);
        Assert.EndsWith("ms: boom", lines[2]);
        Assert.DoesNotContain("info-line", stderr.ToString());
        Assert.DoesNotContain("debug-line", stderr.ToString());
    }

    [Theory]
    [InlineData("debug", LogLevel.Debug)]
    [InlineData("DEBUG", LogLevel.Debug)]
    [InlineData("info", LogLevel.Info)]
    [InlineData("warn", LogLevel.Warn)]
    [InlineData("warning", LogLevel.Warn)]
    [InlineData("error", LogLevel.Error)]
    [InlineData("off", LogLevel.Off)]
    [InlineData("none", LogLevel.Off)]
    [InlineData("verbose", null)]
    [InlineData("", null)]
    [InlineData(null, null)]
    public void ParseLevel(string? text, LogLevel? expected) => Assert.Equal(expected, Log.ParseLevel(text));
}
