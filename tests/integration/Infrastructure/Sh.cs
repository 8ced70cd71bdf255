using CliWrap;
using CliWrap.Buffered;
using Xunit.Sdk;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>The output of one external command; the test decides what an exit code means.</summary>
public sealed record ShResult(string Command, int ExitCode, string Stdout, string Stderr)
{
    public bool Ok => ExitCode == 0;

    public ShResult EnsureOk() => Ok
        ? this
        : throw new XunitException($"`{Command}` exited {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}");

    public override string ToString() => $"`{Command}` -> {ExitCode}\nstdout: {Stdout}\nstderr: {Stderr}";
}

/// <summary>Runs tools (ip, bridge, podman, ...) the tests use to set up and inspect; never used by the plugins.</summary>
public static class Sh
{
    /// <summary>Long enough for podman's first start, short enough that a hung tool fails the test instead of CI.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    public static async Task<ShResult> Run(string file, IEnumerable<string> args, string? stdin = null,
        IReadOnlyDictionary<string, string?>? env = null, TimeSpan? timeout = null)
    {
        var argList = args.ToArray();
        var cmd = Cli.Wrap(file).WithArguments(argList).WithValidation(CommandResultValidation.None);
        if (stdin is not null) cmd = cmd.WithStandardInputPipe(PipeSource.FromString(stdin));
        if (env is not null) cmd = cmd.WithEnvironmentVariables(env);
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        var text = $"{file} {string.Join(' ', argList)}";
        try
        {
            var r = await cmd.ExecuteBufferedAsync(cts.Token);
            return new ShResult(text, r.ExitCode, r.StandardOutput, r.StandardError);
        }
        catch (OperationCanceledException)
        {
            throw new XunitException($"`{text}` did not finish within {(timeout ?? DefaultTimeout).TotalSeconds}s");
        }
    }

    public static Task<ShResult> Run(string file, params string[] args) => Run(file, (IEnumerable<string>)args);

    /// <summary>Runs and throws (with stdout/stderr) unless it exits 0.</summary>
    public static async Task<string> Ok(string file, params string[] args) => (await Run(file, args)).EnsureOk().Stdout;

    /// <summary>`ip [-n ns] args...`</summary>
    public static Task<ShResult> Ip(string? ns, params string[] args) =>
        Run("ip", ns is null ? args : ["-n", ns, .. args]);
}
