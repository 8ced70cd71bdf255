using System.Net;
using System.Net.Sockets;
using System.Text;

namespace PodBridge.Node;

/// <summary>
/// GET /healthz on 127.0.0.1 for the DaemonSet's readiness probe: 200 once the conflist is written, 503 before.
/// A few lines over a TcpListener: the probe needs one status line, not a web stack in a node-critical binary.
/// </summary>
public sealed class Healthz(int port, Action<string> log) : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, port);
    private volatile bool _ready;
    private volatile string _reason = "waiting for this node's spec.podCIDRs";

    public void SetReady() => _ready = true;
    public void SetWaiting(string reason) { _reason = reason; }

    /// <summary>
    /// Serves in the background. A port in use (another agent on this node, e.g. the old pod of a rolling update)
    /// is retried every few seconds instead of failing: this agent then reports nothing until the other one is gone.
    /// </summary>
    public void Start(CancellationToken stop)
    {
        _ = Task.Run(async () =>
        {
            for (var attempt = 0; ; attempt++)
            {
                try
                {
                    _listener.Start();
                    break;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
                {
                    if (attempt == 0) log($"healthz: 127.0.0.1:{port} is in use (another agent on this node?); retrying every 2 s");
                    try { await Task.Delay(TimeSpan.FromSeconds(2), stop); }
                    catch (OperationCanceledException) { return; }
                }
            }
            log($"healthz on http://127.0.0.1:{port}/healthz");
            while (!stop.IsCancellationRequested)
            {
                TcpClient client;
                try { client = await _listener.AcceptTcpClientAsync(stop); }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { return; }
                _ = Task.Run(() => Answer(client, stop), stop);
            }
        }, stop);
    }

    private async Task Answer(TcpClient client, CancellationToken stop)
    {
        using (client)
        {
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop);
                timeout.CancelAfter(TimeSpan.FromSeconds(5));
                var stream = client.GetStream();
                var buffer = new byte[2048];
                var length = 0;
                // Read the request head only; the path decides.
                while (length < buffer.Length)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(length), timeout.Token);
                    if (n == 0) break;
                    length += n;
                    if (buffer.AsSpan(0, length).IndexOf("\r\n\r\n"u8) >= 0) break;
                }
                var head = Encoding.ASCII.GetString(buffer, 0, length);
                var path = head.Split(' ', 3) is [_, var p, ..] ? p : "";
                var (status, body) = path == "/healthz"
                    ? _ready ? ("200 OK", "ok\n") : ("503 Service Unavailable", _reason + "\n")
                    : ("404 Not Found", "not found\n");
                var response = $"HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}";
                await stream.WriteAsync(Encoding.ASCII.GetBytes(response), timeout.Token);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException)
            {
            }
        }
    }

    public void Dispose() => _listener.Stop();
}
