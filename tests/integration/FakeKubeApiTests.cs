using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using k8s;
using k8s.Autorest;
using k8s.Models;
using PodBridge.IntegrationTests.Infrastructure;
using PodBridge.Netlink;

namespace PodBridge.IntegrationTests;

/// <summary>
/// The stand-in API server speaks what a real Kubernetes client expects: KubernetesClient (the library the node
/// agent uses) reads its kubeconfig, lists, gets and watches Nodes on it and gets typed objects back.
/// </summary>
public sealed class FakeKubeApiTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Client_lists_and_gets_nodes_with_their_podCIDRs_and_addresses()
    {
        var token = RunScope.NewContainerId("token");
        using var api = FakeKubeApi.StartOnLoopback(token);
        api.AddNode("node-a", ["10.244.1.0/24", "fd00:10:244:1::/64"], "172.18.0.2", "fc00:f853:ccd:e793::2");
        api.AddNode("node-b", [], "172.18.0.3");
        using var client = Client(api);

        var list = await client.CoreV1.ListNodeAsync();
        Assert.Equal(api.ResourceVersion.ToString(), list.Metadata.ResourceVersion);
        Assert.Equal(["node-a", "node-b"], list.Items.Select(n => n.Metadata.Name));
        var a = list.Items[0];
        Assert.Equal("10.244.1.0/24", a.Spec.PodCIDR);
        Assert.Equal(["10.244.1.0/24", "fd00:10:244:1::/64"], a.Spec.PodCIDRs);
        Assert.Equal(
            [("InternalIP", "172.18.0.2"), ("InternalIP", "fc00:f853:ccd:e793::2"), ("Hostname", "node-a")],
            a.Status.Addresses.Select(x => (x.Type, x.Address)));
        Assert.True(Guid.TryParse(a.Metadata.Uid, out _));
        Assert.NotNull(a.Metadata.CreationTimestamp);
        Assert.InRange(a.Metadata.CreationTimestamp!.Value, DateTime.UtcNow.AddMinutes(-1), DateTime.UtcNow.AddMinutes(1));
        Assert.True(long.Parse(a.Metadata.ResourceVersion) < long.Parse(list.Items[1].Metadata.ResourceVersion));
        Assert.Null(list.Items[1].Spec.PodCIDRs);   // not allocated yet: the agent must wait for it

        var b = await client.CoreV1.ReadNodeAsync("node-b");
        Assert.Equal("Node", b.Kind);
        Assert.Equal("172.18.0.3", Assert.Single(b.Status.Addresses, x => x.Type == "InternalIP").Address);

        api.UpdateNode("node-b", podCidrs: ["10.244.2.0/24"]);
        Assert.Equal(["10.244.2.0/24"], (await client.CoreV1.ReadNodeAsync("node-b")).Spec.PodCIDRs);

        var missing = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ReadNodeAsync("node-z"));
        Assert.Equal(HttpStatusCode.NotFound, missing.Response.StatusCode);
        var status = KubernetesJson.Deserialize<V1Status>(missing.Response.Content);
        Assert.Equal(("NotFound", 404, "node-z"), (status.Reason, status.Code ?? 0, status.Details.Name));
    }

    [Fact]
    public async Task Client_over_https_trusts_the_kubeconfig_CA_and_sends_its_token()
    {
        using var tls = FakeKubeApiTls.Create();
        using var api = FakeKubeApi.StartOnLoopback(RunScope.NewContainerId("token"), tls);
        api.AddNode("node-a", ["10.244.1.0/24"], "172.18.0.2");
        Assert.Equal("https", api.Url.Scheme);
        using var client = Client(api);
        Assert.Equal(["node-a"], (await client.CoreV1.ListNodeAsync()).Items.Select(n => n.Metadata.Name));
        await using var watch = await WatchStream.Open(client, "");
        Assert.Equal(("ADDED", "node-a"), Name(await watch.Next()));

        // Without the CA the handshake fails: the client really verified the server.
        var dir = RunScope.NewTempDir("kubeconfig");
        try
        {
            var path = Path.Combine(dir, "kubeconfig");
            Kubeconfig.Write(path, api.Url, "any");
            using var untrusting = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));
            await Assert.ThrowsAsync<HttpRequestException>(() => untrusting.CoreV1.ListNodeAsync());
        }
        finally
        {
            RunScope.TryDeleteDirectory(dir);
        }
    }

    [Fact]
    public async Task Client_without_the_token_gets_401()
    {
        using var api = FakeKubeApi.StartOnLoopback(RunScope.NewContainerId("token"));
        var dir = RunScope.NewTempDir("kubeconfig");
        try
        {
            var path = api.WriteKubeconfig(Path.Combine(dir, "kubeconfig"), token: "wrong");
            using var client = new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));
            var e = await Assert.ThrowsAsync<HttpOperationException>(() => client.CoreV1.ListNodeAsync());
            Assert.Equal(HttpStatusCode.Unauthorized, e.Response.StatusCode);
        }
        finally
        {
            RunScope.TryDeleteDirectory(dir);
        }
    }

    [Fact]
    public async Task Watch_from_the_list_version_sees_every_change_in_order_and_nothing_before_it()
    {
        using var api = FakeKubeApi.StartOnLoopback();
        api.AddNode("node-a", ["10.244.1.0/24"], "172.18.0.2");
        using var client = Client(api);
        var list = await client.CoreV1.ListNodeAsync();

        await using var watch = await WatchStream.Open(client, $"resourceVersion={list.Metadata.ResourceVersion}&allowWatchBookmarks=true");
        await api.WaitForWatches(1, Wait);
        api.AddNode("node-b", [], "172.18.0.3");
        api.UpdateNode("node-b", podCidrs: ["10.244.2.0/24", "fd00:10:244:2::/64"]);
        api.UpdateNode("node-a", addresses: [NodeAddress.InternalIP("172.18.0.9"), NodeAddress.Hostname("node-a")]);
        api.DeleteNode("node-b");

        var events = new List<(string Type, V1Node Node)>();
        for (var i = 0; i < 4; i++) events.Add(await watch.Next());
        Assert.Equal(
            [("ADDED", "node-b"), ("MODIFIED", "node-b"), ("MODIFIED", "node-a"), ("DELETED", "node-b")],
            events.Select(e => (e.Type, e.Node.Metadata.Name)));
        Assert.Null(events[0].Node.Spec.PodCIDRs);
        Assert.Equal(["10.244.2.0/24", "fd00:10:244:2::/64"], events[1].Node.Spec.PodCIDRs);
        Assert.Equal("172.18.0.9", events[2].Node.Status.Addresses[0].Address);
        Assert.Equal(["10.244.2.0/24", "fd00:10:244:2::/64"], events[3].Node.Spec.PodCIDRs);   // last state
        var versions = events.Select(e => long.Parse(e.Node.Metadata.ResourceVersion)).ToList();
        Assert.Equal(versions.Order(), versions);
        Assert.Equal(versions.Distinct(), versions);
        Assert.Equal(api.ResourceVersion, versions[^1]);
        Assert.All(events, e => Assert.Equal(("Node", "v1"), (e.Node.Kind, e.Node.ApiVersion)));

        // A client that reconnects from the last version it saw misses nothing and sees nothing twice.
        api.AddNode("node-c", ["10.244.3.0/24"], "172.18.0.4");
        await using var resumed = await WatchStream.Open(client, $"resourceVersion={versions[2]}");
        Assert.Equal(("DELETED", "node-b"), Name(await resumed.Next()));
        Assert.Equal(("ADDED", "node-c"), Name(await resumed.Next()));
    }

    [Fact]
    public async Task Watch_without_a_version_starts_with_one_synthetic_ADDED_per_node_and_filters_by_name()
    {
        using var api = FakeKubeApi.StartOnLoopback();
        api.AddNode("node-b", ["10.244.2.0/24"], "172.18.0.3");
        api.AddNode("node-a", ["10.244.1.0/24"], "172.18.0.2");
        using var client = Client(api);

        await using var all = await WatchStream.Open(client, "");
        Assert.Equal(("ADDED", "node-a"), Name(await all.Next()));
        Assert.Equal(("ADDED", "node-b"), Name(await all.Next()));

        await using var own = await WatchStream.Open(client, "fieldSelector=" + Uri.EscapeDataString("metadata.name=node-b"));
        Assert.Equal(("ADDED", "node-b"), Name(await own.Next()));
        await api.WaitForWatches(2, Wait);
        api.UpdateNode("node-a", podCidrs: ["10.244.9.0/24"]);
        api.UpdateNode("node-b", podCidrs: ["10.244.8.0/24"]);
        var (type, node) = await own.Next();
        Assert.Equal(("MODIFIED", "node-b", "10.244.8.0/24"), (type, node.Metadata.Name, node.Spec.PodCIDR));
    }

    [Fact]
    public async Task Watch_from_a_compacted_version_gets_410_Expired_and_a_timeout_ends_with_a_bookmark()
    {
        using var api = FakeKubeApi.StartOnLoopback();
        api.AddNode("node-a", ["10.244.1.0/24"], "172.18.0.2");
        var old = api.ResourceVersion;
        api.UpdateNode("node-a", podCidrs: ["10.244.7.0/24"]);
        api.Compact();
        using var client = Client(api);

        await using (var expired = await WatchStream.Open(client, $"resourceVersion={old}"))
        {
            var line = await expired.NextRaw();
            Assert.Equal("ERROR", line.GetProperty("type").GetString());
            var status = KubernetesJson.Deserialize<V1Status>(line.GetProperty("object"));
            Assert.Equal((410, "Expired"), (status.Code ?? 0, status.Reason));
            Assert.True(await expired.Ended());
        }

        await using var current = await WatchStream.Open(client, $"resourceVersion={api.ResourceVersion}&allowWatchBookmarks=true&timeoutSeconds=1");
        var bookmark = await current.Next();
        Assert.Equal(("BOOKMARK", api.ResourceVersion.ToString()), (bookmark.Type, bookmark.Node.Metadata.ResourceVersion));
        Assert.True(await current.Ended());
        Assert.Equal(0, api.OpenWatches);
    }

    /// <summary>
    /// A listener created inside a network namespace serves there (a client socket created inside reaches it) and
    /// not in the host namespace, although the server's own threads never enter the namespace.
    /// </summary>
    [Fact]
    public async Task Listener_created_inside_a_netns_serves_that_netns_only()
    {
        using var ns = await TestNetNs.Create();
        using var handle = NetNsHandle.Open(ns.Path);
        using var api = new FakeKubeApi(handle.RunInside(() => FakeKubeApi.CreateListener(IPAddress.Loopback)));
        api.AddNode("node-a", ["10.244.1.0/24"], "172.18.0.2");

        using var inside = handle.RunInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        await inside.ConnectAsync(api.EndPoint);
        await inside.SendAsync("GET /api/v1/nodes/node-a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"u8.ToArray());
        var response = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await inside.ReceiveAsync(buffer)) > 0) response.Write(buffer, 0, n);
        var text = Encoding.UTF8.GetString(response.ToArray());
        Assert.StartsWith("HTTP/1.1 200 OK\r\n", text);
        Assert.Contains("\"podCIDRs\":[\"10.244.1.0/24\"]", text);

        using var outside = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await outside.ConnectAsync(api.EndPoint));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    private static Kubernetes Client(FakeKubeApi api)
    {
        var dir = RunScope.NewTempDir("kubeconfig");
        try
        {
            var path = api.WriteKubeconfig(Path.Combine(dir, "kubeconfig"));
            return new Kubernetes(KubernetesClientConfiguration.BuildConfigFromConfigFile(path));
        }
        finally
        {
            RunScope.TryDeleteDirectory(dir);
        }
    }

    private static (string, string) Name((string Type, V1Node Node) e) => (e.Type, e.Node.Metadata.Name);

    /// <summary>
    /// A watch as a Native AOT client makes it: KubernetesClient.Aot has no Watcher, so the request goes through the
    /// client's own HttpClient and credentials and each line is deserialized with the client's JSON context.
    /// </summary>
    private sealed class WatchStream : IAsyncDisposable
    {
        private readonly HttpResponseMessage _response;
        private readonly StreamReader _reader;
        private readonly CancellationTokenSource _cts = new(TimeSpan.FromSeconds(30));

        private WatchStream(HttpResponseMessage response, StreamReader reader) => (_response, _reader) = (response, reader);

        public static async Task<WatchStream> Open(Kubernetes client, string query)
        {
            var uri = new Uri(client.BaseUri, "api/v1/nodes?watch=true" + (query.Length > 0 ? "&" + query : ""));
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            if (client.Credentials is { } credentials) await credentials.ProcessHttpRequestAsync(request, CancellationToken.None);
            var response = await client.HttpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            response.EnsureSuccessStatusCode();
            return new WatchStream(response, new StreamReader(await response.Content.ReadAsStreamAsync()));
        }

        public async Task<JsonElement> NextRaw()
        {
            var line = await _reader.ReadLineAsync(_cts.Token) ?? throw new EndOfStreamException("the watch ended");
            return JsonDocument.Parse(line).RootElement;
        }

        public async Task<(string Type, V1Node Node)> Next()
        {
            var e = await NextRaw();
            return (e.GetProperty("type").GetString()!, KubernetesJson.Deserialize<V1Node>(e.GetProperty("object")));
        }

        public async Task<bool> Ended() => await _reader.ReadLineAsync(_cts.Token) is null;

        public ValueTask DisposeAsync()
        {
            _reader.Dispose();
            _response.Dispose();
            _cts.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
