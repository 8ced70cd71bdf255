using System.Runtime.InteropServices;
using PodBridge.Node;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

// podbridge-node: the DaemonSet's node agent. Main only parses the flags and runs the agent; every failure is one
// line on stderr and a non-zero exit (the pod's log and CrashLoopBackOff tell the operator why).
static void Log(string message) => Console.Error.WriteLine($"{DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} podbridge-node: {message}");

AgentOptions options;
try
{
    if (args is ["-h" or "--help"])
    {
        Console.Out.WriteLine(AgentOptions.Usage);
        return 0;
    }
    options = AgentOptions.Parse(args, Environment.GetEnvironmentVariable);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"podbridge-node: {e.Message}\n{AgentOptions.Usage}");
    return 2;
}

using var stop = new CancellationTokenSource();
// SIGTERM (kubelet stopping the pod) and SIGINT end the watch loop; nothing is undone on the way out.
using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => { context.Cancel = true; stop.Cancel(); });
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, context => { context.Cancel = true; stop.Cancel(); });
try
{
    return await new Agent(options, Log).RunAsync(stop.Token);
}
catch (Exception e) when (e is AgentException or k8s.Exceptions.KubeConfigException or IOException or UnauthorizedAccessException)
{
    Log(e.Message);
    return 1;
}
catch (Exception e)
{
    // Anything else is a bug or a broken image (e.g. a missing shared library): say so instead of dying silently.
    Log($"unexpected failure: {e.GetType().Name}: {e.Message}");
    return 1;
}
