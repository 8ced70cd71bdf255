using System.Diagnostics;
using PodBridge.Cni;

namespace PodBridge.Cni.Tests;

public sealed class ChildProcessTests
{
    [Fact]
    public void StdinIn_StdoutAndStderrOut_ExitCodeKept()
    {
        var outcome = ChildProcess.Run("/bin/sh", ["-c", "cat; echo oops >&2; exit 3"], null, "hello"u8.ToArray(),
            TimeSpan.FromSeconds(10), captureStderr: true);
        Assert.Equal(3, outcome.ExitCode);
        Assert.Equal("hello", System.Text.Encoding.UTF8.GetString(outcome.Stdout));
        Assert.Equal("oops\n", outcome.Stderr);
    }

    [Fact]
    public void ChildWritingMegabytesBeforeReadingStdin_DoesNotDeadlock()
    {
        // 2 MiB out before reading a 2 MiB stdin: both exceed a pipe buffer, so a runner that writes stdin before
        // draining stdout would hang here until the timeout.
        var input = new byte[2 << 20];
        var outcome = ChildProcess.Run("/bin/sh", ["-c", "head -c 2097152 /dev/zero; cat > /dev/null"], null, input,
            TimeSpan.FromSeconds(20), captureStderr: false);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal(2 << 20, outcome.Stdout.Length);
    }

    [Fact]
    public void HungChild_IsKilled_AfterTheTimeout()
    {
        var watch = Stopwatch.StartNew();
        var e = Assert.Throws<TimeoutException>(() => ChildProcess.Run("/bin/sh", ["-c", "sleep 30"], null, null,
            TimeSpan.FromMilliseconds(300), captureStderr: false));
        Assert.Contains("/bin/sh", e.Message);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
    }

    [Fact]
    public void MissingProgram_IsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => ChildProcess.Run("/nonexistent/pbt-plugin", [], null, null,
            TimeSpan.FromSeconds(5), captureStderr: false));
    }

    [Theory]
    [InlineData("", 14695981039346656037UL)]
    [InlineData("a", 0xaf63dc4c8601ec8cUL)]
    public void Fnv1a64_MatchesTheReferenceVectors(string input, ulong expected) =>
        Assert.Equal(expected, ChildProcess.Fnv1a64(input));
}
