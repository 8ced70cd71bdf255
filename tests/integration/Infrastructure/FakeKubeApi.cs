using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using System.Web;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>One entry of a Node's status.addresses (types as kubelet reports them: InternalIP, ExternalIP, Hostname).</summary>
public sealed record NodeAddress(string Type, string Address)
{
    public static NodeAddress InternalIP(string address) => new("InternalIP", address);
    public static NodeAddress Hostname(string name) => new("Hostname", name);
}

/// <summary>
/// A stand-in Kubernetes API server of the tests' own, serving Node objects with the JSON kube-apiserver sends, so
/// that a real client (KubernetesClient, the node agent) can list and watch it:
/// <list type="bullet">
/// <item><c>GET /api/v1/nodes</c> → v1 NodeList (items without kind/apiVersion, as the real server sends them);</item>
/// <item><c>GET /api/v1/nodes/NAME</c> → the Node, or a 404 Status (reason NotFound);</item>
/// <item><c>GET /api/v1/nodes?watch=true</c> (also <c>/api/v1/watch/nodes</c>) → a chunked stream of
///   <c>{"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR","object":{...}}</c> lines. Without a resourceVersion (or
///   with "0") the stream starts with a synthetic ADDED per existing node; with one, every change after it is
///   replayed; one older than the last <see cref="Compact"/> gets an ERROR event with a 410 "Expired" Status, as
///   kube-apiserver does when etcd has compacted that revision. <c>timeoutSeconds</c> ends the stream (after a
///   BOOKMARK when <c>allowWatchBookmarks=true</c>); <c>fieldSelector=metadata.name=X</c> filters.</item>
/// </list>
/// The test drives the cluster with <see cref="AddNode(string, IReadOnlyList{string}, IReadOnlyList{NodeAddress})"/>,
/// <see cref="UpdateNode"/> and <see cref="DeleteNode"/>: each bumps one cluster-wide resourceVersion and is sent to
/// every open watch. Plain HTTP/1.1 over System.Net.Sockets (keep-alive, chunked watches), optionally requiring a
/// bearer token, over TLS when given a <see cref="FakeKubeApiTls"/> (as a real API server: the client then needs
/// the kubeconfig's CA and the TLS libraries). It listens on a socket the caller may have created inside a node's network namespace
/// (<see cref="CreateListener"/> run through NetNsHandle.RunInside): the socket stays bound to that namespace while
/// this server's threads never enter it.
/// </summary>
public sealed class FakeKubeApi : IDisposable
{
    private const int MaxHeaderBytes = 64 * 1024;
    private static readonly byte[] HeaderEnd = "\r\n\r\n"u8.ToArray();

    private readonly Socket _listener;
    private readonly string? _token;
    private readonly FakeKubeApiTls? _tls;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly SortedDictionary<string, NodeState> _nodes = new(StringComparer.Ordinal);
    private readonly List<(long ResourceVersion, string Node, byte[] Line)> _history = [];
    private readonly List<WatchStream> _watches = [];
    private readonly ConcurrentDictionary<Socket, Task> _connections = new();
    private readonly ConcurrentQueue<string> _requests = new();
    private readonly Task _acceptLoop;
    private long _resourceVersion = 100;  // any start: clients must treat it as opaque
    private long _compactedThrough;
    private int _disposed;

    /// <summary>
    /// Serves on <paramref name="listener"/> (bound; listening or not) and takes ownership of it. With
    /// <paramref name="bearerToken"/>, every request must carry <c>Authorization: Bearer TOKEN</c> (else 401); with
    /// <paramref name="tls"/>, https.
    /// </summary>
    public FakeKubeApi(Socket listener, string? bearerToken = null, FakeKubeApiTls? tls = null)
    {
        ArgumentNullException.ThrowIfNull(listener);
        _listener = listener;
        _token = bearerToken;
        _tls = tls;
        // listen() again on a listening socket only sets the backlog.
        _listener.Listen(128);
        EndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        _acceptLoop = Task.Run(AcceptLoop);
    }

    /// <summary>A server on 127.0.0.1 and a free port.</summary>
    public static FakeKubeApi StartOnLoopback(string? bearerToken = null, FakeKubeApiTls? tls = null) =>
        new(CreateListener(IPAddress.Loopback), bearerToken, tls);

    /// <summary>
    /// A bound, listening TCP socket. Call it inside a network namespace (NetNsHandle.RunInside) to serve agents
    /// running in that namespace; port 0 picks a free one.
    /// </summary>
    public static Socket CreateListener(IPAddress address, int port = 0)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(128);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>http(s)://ADDRESS:PORT (IPv6 in brackets), the kubeconfig's server.</summary>
    public Uri Url => new($"{(_tls is null ? "http" : "https")}://{EndPoint}");

    /// <summary>The cluster-wide resourceVersion of the last change.</summary>
    public long ResourceVersion { get { lock (_lock) return _resourceVersion; } }

    /// <summary>Every request line served so far ("GET /api/v1/nodes?watch=true&amp;..."), in order of arrival.</summary>
    public IReadOnlyList<string> Requests => [.. _requests];

    public int OpenWatches { get { lock (_lock) return _watches.Count; } }

    /// <summary>
    /// Writes a kubeconfig pointing at this server (plain http; with this server's bearer token, if any) and returns
    /// its path. <paramref name="server"/> overrides the URL, e.g. for an agent that reaches the server through
    /// another address than the one it listens on.
    /// </summary>
    public string WriteKubeconfig(string path, Uri? server = null, string? token = null)
    {
        Kubeconfig.Write(path, server ?? Url, token ?? _token, _tls?.CaPem);
        return path;
    }

    // ---- the cluster -----------------------------------------------------------------------------------------

    /// <summary>Adds a Node with these podCIDRs (may be empty: not yet allocated) and InternalIPs, plus its Hostname address.</summary>
    public void AddNode(string name, IReadOnlyList<string> podCidrs, params string[] internalIps) =>
        AddNode(name, podCidrs, [.. internalIps.Select(NodeAddress.InternalIP), NodeAddress.Hostname(name)]);

    public void AddNode(string name, IReadOnlyList<string> podCidrs, IReadOnlyList<NodeAddress> addresses)
    {
        lock (_lock)
        {
            if (_nodes.ContainsKey(name)) throw new InvalidOperationException($"node {name} already exists");
            var node = new NodeState(name, Guid.NewGuid().ToString(), DateTimeOffset.UtcNow, ++_resourceVersion,
                [.. podCidrs], [.. addresses]);
            _nodes[name] = node;
            Publish("ADDED", node);
        }
    }

    /// <summary>Changes a Node's podCIDRs and/or addresses (null keeps them) and sends MODIFIED.</summary>
    public void UpdateNode(string name, IReadOnlyList<string>? podCidrs = null, IReadOnlyList<NodeAddress>? addresses = null)
    {
        lock (_lock)
        {
            var old = _nodes.GetValueOrDefault(name) ?? throw new InvalidOperationException($"node {name} does not exist");
            var node = old with
            {
                ResourceVersion = ++_resourceVersion,
                PodCidrs = podCidrs is null ? old.PodCidrs : [.. podCidrs],
                Addresses = addresses is null ? old.Addresses : [.. addresses],
            };
            _nodes[name] = node;
            Publish("MODIFIED", node);
        }
    }

    /// <summary>Removes a Node and sends DELETED carrying its last state at the deletion's resourceVersion.</summary>
    public void DeleteNode(string name)
    {
        lock (_lock)
        {
            var old = _nodes.GetValueOrDefault(name) ?? throw new InvalidOperationException($"node {name} does not exist");
            _nodes.Remove(name);
            Publish("DELETED", old with { ResourceVersion = ++_resourceVersion });
        }
    }

    /// <summary>Forgets the change history, as etcd compaction does: a watch from an older resourceVersion gets 410 Expired.</summary>
    public void Compact()
    {
        lock (_lock)
        {
            _compactedThrough = _resourceVersion;
            _history.Clear();
        }
    }

    /// <summary>Ends every open watch stream cleanly (as kube-apiserver does at its timeout or on restart).</summary>
    public void CloseWatches()
    {
        lock (_lock)
            foreach (var w in _watches) w.Events.Writer.TryComplete();
    }

    /// <summary>Waits until at least <paramref name="count"/> watches are open (a client has caught up).</summary>
    public async Task WaitForWatches(int count, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (OpenWatches < count)
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"{OpenWatches} watch(es) open after {timeout.TotalSeconds}s, expected {count}; requests: {string.Join(" | ", Requests)}");
            await Task.Delay(20);
        }
    }

    private sealed record NodeState(string Name, string Uid, DateTimeOffset Created, long ResourceVersion,
        IReadOnlyList<string> PodCidrs, IReadOnlyList<NodeAddress> Addresses);

    private sealed class WatchStream(string? nameFilter)
    {
        public string? NameFilter { get; } = nameFilter;
        public Channel<byte[]> Events { get; } = Channel.CreateUnbounded<byte[]>(new UnboundedChannelOptions { SingleReader = true });
        public bool Matches(string node) => NameFilter is null || NameFilter == node;
    }

    // Under _lock.
    private void Publish(string type, NodeState node)
    {
        var line = EventLine(type, w => WriteNode(w, node, withTypeMeta: true));
        _history.Add((node.ResourceVersion, node.Name, line));
        foreach (var watch in _watches)
            if (watch.Matches(node.Name)) watch.Events.Writer.TryWrite(line);
    }

    // ---- JSON, as kube-apiserver writes it -------------------------------------------------------------------

    private static void WriteNode(Utf8JsonWriter w, NodeState node, bool withTypeMeta)
    {
        w.WriteStartObject();
        if (withTypeMeta)
        {
            w.WriteString("kind", "Node");
            w.WriteString("apiVersion", "v1");
        }
        w.WriteStartObject("metadata");
        w.WriteString("name", node.Name);
        w.WriteString("uid", node.Uid);
        w.WriteString("resourceVersion", node.ResourceVersion.ToString(CultureInfo.InvariantCulture));
        w.WriteString("creationTimestamp", node.Created.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        w.WriteStartObject("labels");
        w.WriteString("kubernetes.io/hostname", node.Name);
        w.WriteString("kubernetes.io/os", "linux");
        w.WriteEndObject();
        w.WriteEndObject();

        w.WriteStartObject("spec");
        if (node.PodCidrs.Count > 0)
        {
            // The API keeps podCIDR == podCIDRs[0] (the legacy single-stack field).
            w.WriteString("podCIDR", node.PodCidrs[0]);
            w.WriteStartArray("podCIDRs");
            foreach (var cidr in node.PodCidrs) w.WriteStringValue(cidr);
            w.WriteEndArray();
        }
        w.WriteEndObject();

        w.WriteStartObject("status");
        w.WriteStartArray("addresses");
        foreach (var a in node.Addresses)
        {
            w.WriteStartObject();
            w.WriteString("type", a.Type);
            w.WriteString("address", a.Address);
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static byte[] EventLine(string type, Action<Utf8JsonWriter> writeObject)
    {
        var body = Json(w =>
        {
            w.WriteStartObject();
            w.WriteString("type", type);
            w.WritePropertyName("object");
            writeObject(w);
            w.WriteEndObject();
        });
        return [.. body, (byte)'\n'];
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer)) write(w);
        return buffer.ToArray();
    }

    private static void WriteStatus(Utf8JsonWriter w, int code, string reason, string message, string? name = null)
    {
        w.WriteStartObject();
        w.WriteString("kind", "Status");
        w.WriteString("apiVersion", "v1");
        w.WriteStartObject("metadata");
        w.WriteEndObject();
        w.WriteString("status", "Failure");
        w.WriteString("message", message);
        w.WriteString("reason", reason);
        if (name is not null)
        {
            w.WriteStartObject("details");
            w.WriteString("name", name);
            w.WriteString("kind", "nodes");
            w.WriteEndObject();
        }
        w.WriteNumber("code", code);
        w.WriteEndObject();
    }

    private byte[] NodeListJson(string? nameFilter)
    {
        lock (_lock)
        {
            return Json(w =>
            {
                w.WriteStartObject();
                w.WriteString("kind", "NodeList");
                w.WriteString("apiVersion", "v1");
                w.WriteStartObject("metadata");
                w.WriteString("resourceVersion", _resourceVersion.ToString(CultureInfo.InvariantCulture));
                w.WriteEndObject();
                w.WriteStartArray("items");
                foreach (var node in _nodes.Values)
                    if (nameFilter is null || node.Name == nameFilter) WriteNode(w, node, withTypeMeta: false);
                w.WriteEndArray();
                w.WriteEndObject();
            });
        }
    }

    // ---- HTTP/1.1 ---------------------------------------------------------------------------------------------

    private sealed record Request(string Method, string Path, System.Collections.Specialized.NameValueCollection Query,
        string? Authorization, bool Close);

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            client.NoDelay = true;
            _connections[client] = Task.Run(() => Serve(client));
        }
    }

    private async Task Serve(Socket client)
    {
        var buffer = new byte[MaxHeaderBytes];
        var filled = 0;
        try
        {
            await using var network = new NetworkStream(client, ownsSocket: false);
            Stream stream = network;
            if (_tls is not null)
            {
                var ssl = new SslStream(network, leaveInnerStreamOpen: true);
                using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                handshake.CancelAfter(TimeSpan.FromSeconds(10));
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _tls.Server }, handshake.Token);
                stream = ssl;
            }
            await using var _ = stream;
            while (!_stop.IsCancellationRequested)
            {
                // One request: the header block up to CRLF CRLF (GETs carry no body we need; a body is skipped).
                int end;
                while ((end = buffer.AsSpan(0, filled).IndexOf(HeaderEnd)) < 0)
                {
                    if (filled == buffer.Length) { await Respond(stream, 431, "RequestHeaderFieldsTooLarge", "request header too large", close: true); return; }
                    var n = await stream.ReadAsync(buffer.AsMemory(filled), _stop.Token);
                    if (n == 0) return;
                    filled += n;
                }
                var request = Parse(Encoding.ASCII.GetString(buffer, 0, end), out var contentLength);
                var consumed = end + HeaderEnd.Length;
                // Skip a request body, if any.
                var skip = contentLength;
                var inBuffer = (int)Math.Min(skip, filled - consumed);
                consumed += inBuffer;
                skip -= inBuffer;
                while (skip > 0)
                {
                    var n = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(skip, buffer.Length)), _stop.Token);
                    if (n == 0) return;
                    skip -= n;
                }
                Buffer.BlockCopy(buffer, consumed, buffer, 0, filled - consumed);
                filled -= consumed;

                if (request is null) { await Respond(stream, 400, "BadRequest", "malformed request", close: true); return; }
                _requests.Enqueue($"{request.Method} {request.Path}{(request.Query.Count > 0 ? "?" + request.Query : "")}");
                if (!await Handle(client, stream, request) || request.Close) return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException
                                       or System.Security.Authentication.AuthenticationException)
        {
            // The client went away (or failed the TLS handshake) or the server is stopping.
        }
        finally
        {
            _connections.TryRemove(client, out _);
            client.Dispose();
        }
    }

    private static Request? Parse(string head, out long contentLength)
    {
        contentLength = 0;
        var lines = head.Split("\r\n");
        var first = lines[0].Split(' ');
        if (first.Length != 3 || !first[2].StartsWith("HTTP/1.", StringComparison.Ordinal)) return null;
        string? authorization = null;
        var close = first[2] == "HTTP/1.0";
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0) return null;
            var name = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (name.Equals("Authorization", StringComparison.OrdinalIgnoreCase)) authorization = value;
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase)) close = value.Equals("close", StringComparison.OrdinalIgnoreCase);
            else if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && !long.TryParse(value, out contentLength)) return null;
        }
        var target = first[1];
        var q = target.IndexOf('?');
        var path = q < 0 ? target : target[..q];
        var query = HttpUtility.ParseQueryString(q < 0 ? "" : target[(q + 1)..]);
        return new Request(first[0], path.TrimEnd('/'), query, authorization, close);
    }

    /// <returns>false when the connection must close.</returns>
    private async Task<bool> Handle(Socket client, Stream stream, Request request)
    {
        if (_token is not null && request.Authorization != $"Bearer {_token}")
            return await Respond(stream, 401, "Unauthorized", "Unauthorized", close: request.Close);
        if (request.Method != "GET")
            return await Respond(stream, 405, "MethodNotAllowed", $"the server does not allow this method on the requested resource: {request.Method}", close: request.Close);

        const string nodes = "/api/v1/nodes", legacyWatch = "/api/v1/watch/nodes";
        var nameFilter = FieldSelectorName(request.Query["fieldSelector"]);
        var watch = request.Query["watch"] is "true" or "1" || request.Path == legacyWatch;

        if (request.Path is nodes or legacyWatch)
        {
            if (watch) { await Watch(client, stream, request.Query, nameFilter); return false; }
            return await Respond(stream, 200, NodeListJson(nameFilter), close: request.Close);
        }
        if (request.Path.StartsWith(nodes + "/", StringComparison.Ordinal) || request.Path.StartsWith(legacyWatch + "/", StringComparison.Ordinal))
        {
            var name = Uri.UnescapeDataString(request.Path[(request.Path.LastIndexOf('/') + 1)..]);
            if (watch) { await Watch(client, stream, request.Query, name); return false; }
            byte[]? body;
            lock (_lock)
                body = _nodes.TryGetValue(name, out var node) ? Json(w => WriteNode(w, node, withTypeMeta: true)) : null;
            return body is not null
                ? await Respond(stream, 200, body, close: request.Close)
                : await Respond(stream, 404, "NotFound", $"nodes \"{name}\" not found", close: request.Close, name: name);
        }
        return await Respond(stream, 404, "NotFound", "the server could not find the requested resource", close: request.Close);
    }

    /// <summary>Only the selector agents use for their own node: <c>metadata.name=X</c> (or ==).</summary>
    private static string? FieldSelectorName(string? selector)
    {
        if (string.IsNullOrEmpty(selector)) return null;
        foreach (var prefix in new[] { "metadata.name==", "metadata.name=" })
            if (selector.StartsWith(prefix, StringComparison.Ordinal)) return selector[prefix.Length..];
        return null;
    }

    private async Task Watch(Socket client, Stream stream, System.Collections.Specialized.NameValueCollection query, string? nameFilter)
    {
        var rvText = query["resourceVersion"];
        var bookmarks = query["allowWatchBookmarks"] is "true" or "1";
        var sendInitial = query["sendInitialEvents"] is "true" or "1";
        var timeout = int.TryParse(query["timeoutSeconds"], out var seconds) && seconds > 0 ? TimeSpan.FromSeconds(seconds) : Timeout.InfiniteTimeSpan;
        long rv = 0;
        if (!string.IsNullOrEmpty(rvText) && !long.TryParse(rvText, NumberStyles.None, CultureInfo.InvariantCulture, out rv))
        {
            await Respond(stream, 400, "BadRequest", $"invalid resource version: {rvText}", close: true);
            return;
        }

        var w = new WatchStream(nameFilter);
        var initial = new List<byte[]>();
        byte[]? expired = null;
        lock (_lock)
        {
            if (rv == 0 || sendInitial)
            {
                // "Get state and start at most recent": a synthetic ADDED per existing object.
                foreach (var node in _nodes.Values)
                    if (w.Matches(node.Name)) initial.Add(EventLine("ADDED", j => WriteNode(j, node, withTypeMeta: true)));
                if (sendInitial && bookmarks) initial.Add(Bookmark(_resourceVersion, initialEventsEnd: true));
            }
            else if (rv < _compactedThrough)
            {
                expired = EventLine("ERROR", j => WriteStatus(j, 410, "Expired", $"too old resource version: {rv} ({_compactedThrough})"));
            }
            else
            {
                foreach (var e in _history)
                    if (e.ResourceVersion > rv && w.Matches(e.Node)) initial.Add(e.Line);
            }
            if (expired is null) _watches.Add(w);
        }

        try
        {
            await stream.WriteAsync(Head(200, "OK", chunked: true, close: true), _stop.Token);
            if (expired is not null)
            {
                await WriteChunk(stream, expired, _stop.Token);
                await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), _stop.Token);
                return;
            }
            foreach (var line in initial) await WriteChunk(stream, line, _stop.Token);

            using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            ended.CancelAfter(timeout);
            // The client never sends anything on a watch; readable means it hung up (peeked: TLS bytes stay put).
            _ = WatchForHangUp(client, ended);
            var timedOut = false;
            try
            {
                while (await w.Events.Reader.WaitToReadAsync(ended.Token))
                    while (w.Events.Reader.TryRead(out var line))
                        await WriteChunk(stream, line, ended.Token);
            }
            catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
            {
                timedOut = true;
            }
            if (timedOut || w.Events.Reader.Completion.IsCompleted)
            {
                if (bookmarks) await WriteChunk(stream, Bookmark(ResourceVersion, initialEventsEnd: false), _stop.Token);
                await stream.WriteAsync("0\r\n\r\n"u8.ToArray(), _stop.Token);
            }
        }
        finally
        {
            lock (_lock) _watches.Remove(w);
        }
    }

    private static async Task WatchForHangUp(Socket client, CancellationTokenSource ended)
    {
        try
        {
            var one = new byte[1];
            await client.ReceiveAsync(one, SocketFlags.Peek, ended.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            return;
        }
        try { ended.Cancel(); } catch (ObjectDisposedException) { }
    }

    private static byte[] Bookmark(long rv, bool initialEventsEnd) => EventLine("BOOKMARK", w =>
    {
        w.WriteStartObject();
        w.WriteString("kind", "Node");
        w.WriteString("apiVersion", "v1");
        w.WriteStartObject("metadata");
        w.WriteString("resourceVersion", rv.ToString(CultureInfo.InvariantCulture));
        w.WriteNull("creationTimestamp");
        if (initialEventsEnd)
        {
            w.WriteStartObject("annotations");
            w.WriteString("k8s.io/initial-events-end", "true");
            w.WriteEndObject();
        }
        w.WriteEndObject();
        w.WriteEndObject();
    });

    private static async Task WriteChunk(Stream stream, byte[] data, CancellationToken ct)
    {
        var size = Encoding.ASCII.GetBytes($"{data.Length:x}\r\n");
        var chunk = new byte[size.Length + data.Length + 2];
        size.CopyTo(chunk, 0);
        data.CopyTo(chunk, size.Length);
        chunk[^2] = (byte)'\r';
        chunk[^1] = (byte)'\n';
        await stream.WriteAsync(chunk, ct);
    }

    private static byte[] Head(int code, string reasonPhrase, bool chunked, bool close, long length = 0) =>
        Encoding.ASCII.GetBytes(
            $"HTTP/1.1 {code} {reasonPhrase}\r\n" +
            "Content-Type: application/json\r\n" +
            "Cache-Control: no-cache, private\r\n" +
            (chunked ? "Transfer-Encoding: chunked\r\n" : $"Content-Length: {length}\r\n") +
            (close ? "Connection: close\r\n" : "") +
            "\r\n");

    private Task<bool> Respond(Stream stream, int code, string reason, string message, bool close, string? name = null) =>
        Respond(stream, code, Json(w => WriteStatus(w, code, reason, message, name)), close);

    private async Task<bool> Respond(Stream stream, int code, byte[] body, bool close)
    {
        var phrase = code switch
        {
            200 => "OK", 400 => "Bad Request", 401 => "Unauthorized", 404 => "Not Found",
            405 => "Method Not Allowed", 431 => "Request Header Fields Too Large", _ => "Error",
        };
        var head = Head(code, phrase, chunked: false, close, body.Length);
        var message = new byte[head.Length + body.Length];
        head.CopyTo(message, 0);
        body.CopyTo(message, head.Length);
        await stream.WriteAsync(message, _stop.Token);
        return !close;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _stop.Cancel();
        _listener.Dispose();
        foreach (var socket in _connections.Keys)
        {
            try { socket.Shutdown(SocketShutdown.Both); } catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            socket.Dispose();
        }
        Task.WaitAll([_acceptLoop, .. _connections.Values], TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}

/// <summary>Writes the kubeconfig an agent or KubernetesClient reads: one cluster, one context, an optional bearer token.</summary>
public static class Kubeconfig
{
    public static void Write(string path, Uri server, string? token = null, string? caPem = null)
    {
        var ca = caPem is null ? "" : $"    certificate-authority-data: {Convert.ToBase64String(Encoding.ASCII.GetBytes(caPem))}\n";
        // Without a token the context names no user: KubernetesClient then sends no credentials.
        var user = token is null ? "" : "    user: podbridge-test\n";
        var users = token is null
            ? "users: []\n"
            : $"users:\n- name: podbridge-test\n  user:\n    token: \"{token}\"\n";
        File.WriteAllText(path,
            "apiVersion: v1\n" +
            "kind: Config\n" +
            "clusters:\n" +
            "- name: podbridge-test\n" +
            "  cluster:\n" +
            $"    server: \"{server.GetLeftPart(UriPartial.Authority)}\"\n" +
            ca +
            "contexts:\n" +
            "- name: podbridge-test\n" +
            "  context:\n" +
            "    cluster: podbridge-test\n" +
            user +
            "current-context: podbridge-test\n" +
            users);
    }
}

/// <summary>
/// A throw-away CA and a server certificate it signed for 127.0.0.1 and ::1 (what a kubeconfig's
/// certificate-authority-data and an API server's serving certificate are).
/// </summary>
public sealed class FakeKubeApiTls : IDisposable
{
    private FakeKubeApiTls(X509Certificate2 server, string caPem) => (Server, CaPem) = (server, caPem);

    public X509Certificate2 Server { get; }
    public string CaPem { get; }

    public static FakeKubeApiTls Create()
    {
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = DateTimeOffset.UtcNow.AddDays(1);
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var caRequest = new CertificateRequest("CN=podbridge-test-ca", caKey, HashAlgorithmName.SHA256);
        caRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        caRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        caRequest.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(caRequest.PublicKey, false));
        using var ca = caRequest.CreateSelfSigned(notBefore, notAfter);

        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=kube-apiserver", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddIpAddress(IPAddress.IPv6Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));   // serverAuth
        using var signed = request.Create(ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(8));
        using var withKey = signed.CopyWithPrivateKey(key);
        // Re-imported so the key is usable by SslStream on every platform (an ephemeral key is not on all).
        var server = X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
        return new FakeKubeApiTls(server, ca.ExportCertificatePem());
    }

    public void Dispose() => Server.Dispose();
}
