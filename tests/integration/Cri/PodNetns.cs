using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests.Cri;

/// <summary>
/// A name in /run/netns for a pod netns that containerd mounted under its own state dir, so the iproute2-based
/// Kernel helpers (`ip -n NAME`) can look inside. Only a symlink: it holds no reference to the namespace, so the
/// pod's teardown is exactly what it would be without it. Dispose removes the link, never the namespace.
/// </summary>
public sealed partial class PodNetns : IDisposable
{
    private PodNetns(string name, string path)
    {
        Name = name;
        Path = path;
    }

    public string Name { get; }
    public string Path { get; }

    public static PodNetns Alias(string netnsPath)
    {
        RunScope.EnsureInitialized();
        Directory.CreateDirectory("/run/netns");
        var alias = new PodNetns(RunScope.NewName(), netnsPath);
        File.CreateSymbolicLink($"/run/netns/{alias.Name}", netnsPath);
        return alias;
    }

    public void Dispose()
    {
        try { File.Delete($"/run/netns/{Name}"); }
        catch (IOException) { }
    }

    public override string ToString() => Name;

    /// <summary>
    /// A TCP listener bound to 0.0.0.0:<paramref name="port"/> inside the namespace at <paramref name="netnsPath"/>:
    /// the socket is created on a short-lived thread that entered the namespace, and stays bound to it.
    /// </summary>
    public static Socket ListenIn(string netnsPath, int port)
    {
        Socket? socket = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var ns = File.OpenHandle(netnsPath);
                if (setns(ns.DangerousGetHandle().ToInt32(), CLONE_NEWNET) != 0)
                    throw new IOException($"setns({netnsPath}) failed: errno {Marshal.GetLastPInvokeError()}");
                socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(IPAddress.Any, port));
                socket.Listen();
            }
            catch (Exception e)
            {
                socket?.Dispose();
                socket = null;
                error = e;
            }
        });
        thread.Start();
        thread.Join();
        // The thread is gone with its namespace; the socket keeps the one it was created in.
        return socket ?? throw new IOException($"cannot listen in {netnsPath}: {error?.Message}", error);
    }

    private const int CLONE_NEWNET = 0x40000000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);
}
