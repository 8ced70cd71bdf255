using System.Text.Json;
using PodBridge.Cni;

namespace PodBridge.Ipam.Warm;

/// <summary>
/// The plugin's side of the warm IPAM: hand the invocation to `podbridge-ipam serve` when its socket is in the
/// data dir. Anything short of an answer (no socket, a refused or timed-out connect, no acknowledgement within
/// <see cref="AckTimeout"/>, a dropped connection) sends the caller down the in-process path, which takes the same
/// flock and so never runs alongside the server's transaction.
/// </summary>
internal static class WarmClient
{
    public enum Outcome
    {
        /// <summary>No server (or not for this request): in-process, as on a node without one.</summary>
        NoServer,
        /// <summary>The server answered; an error answer is thrown as the CniException it carries.</summary>
        Answered,
        /// <summary>The request may have reached the server and even been committed: the in-process retry must be idempotent.</summary>
        Lost,
    }

    /// <summary>A live server acknowledges at once; past this it counts as hung.</summary>
    public static readonly TimeSpan AckTimeout = TimeSpan.FromMilliseconds(500);

    /// <summary>After the acknowledgement: the server may wait for the flock like any caller, then fsync.</summary>
    public static readonly TimeSpan ResponseTimeout = LiteDbLeaseStore.DefaultLockTimeout + TimeSpan.FromSeconds(5);

    public static Outcome Call(string dataDir, CniVerb verb, CniRequest r, out CniResult? result)
    {
        result = null;
        var path = Path.Combine(dataDir, WarmProtocol.SocketName);
        var message = WarmProtocol.EncodeRequest(verb, r);
        if (message is null) return Outcome.NoServer;

        UnixSocket? socket;
        var ackDeadline = UnixSocket.DeadlineIn(AckTimeout);
        try
        {
            // No socket file / nobody listening is the normal "no server" (the common case: one failed syscall, null).
            socket = UnixSocket.TryConnect(path, ackDeadline);
        }
        catch (Exception e) when (e is IOException or TimeoutException)
        {
            if (e is TimeoutException) Log.Warn($"warm IPAM server {path} did not accept in time; using the in-process IPAM");
            return Outcome.NoServer;
        }
        if (socket is null) return Outcome.NoServer;

        using (socket)
        using (Log.Time("ipam.warm"))
        {
            try
            {
                socket.SendAll(message, ackDeadline);
                Span<byte> ack = stackalloc byte[1];
                socket.ReceiveExactly(ack, ackDeadline);
                if (ack[0] != WarmProtocol.Ack) throw new InvalidDataException("no acknowledgement");
                var response = WarmProtocol.ReadMessage(socket, UnixSocket.DeadlineIn(ResponseTimeout));
                var body = response.AsSpan(1);
                switch (response[0])
                {
                    case WarmProtocol.Result:
                        using (var doc = JsonDocument.Parse(response.AsMemory(1)))
                            result = CniResult.Parse(doc.RootElement, "IPAM server result");
                        return Outcome.Answered;
                    case WarmProtocol.Ok:
                        return Outcome.Answered;
                    case WarmProtocol.Error:
                        throw WarmProtocol.ParseError(body);
                    case WarmProtocol.NotMine:
                        return Outcome.NoServer;
                    default:
                        Log.Warn($"warm IPAM server {path} failed the request; retrying in-process");
                        return Outcome.Lost;
                }
            }
            catch (Exception e) when (e is IOException or TimeoutException or InvalidDataException or JsonException)
            {
                Log.Warn($"warm IPAM server {path}: {e.Message}; retrying in-process");
                return Outcome.Lost;
            }
        }
    }
}
