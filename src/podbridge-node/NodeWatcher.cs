using System.Net;
using System.Text.Json;
using k8s;
using k8s.Models;

namespace PodBridge.Node;

/// <summary>
/// List, then watch from the list's resourceVersion, keeping every Node's <see cref="ClusterNode"/>; calls back
/// with the whole set after every change. On a dropped watch it watches again from the last resourceVersion; on
/// 410 Gone (history compacted) or any error it lists again.
///
/// The list is KubernetesClient.Aot's typed call. The watch is not: the Aot package ships no Watcher/WatchAsync,
/// and the stream behind `ListNodeWithHttpMessagesAsync(watch: true)` sits in an internal content type after the
/// client has already consumed its first line. So the watch is one GET through the client's own HttpClient and
/// credentials (TLS, token, client certificate all from the kubeconfig or service account), and each event line is
/// decoded with the package's source-generated V1Node serializer.
/// </summary>
public sealed class NodeWatcher(Kubernetes client, Action<string> log)
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    public async Task RunAsync(Func<IReadOnlyCollection<ClusterNode>, Task> onChange, CancellationToken stop)
    {
        var backoff = TimeSpan.FromMilliseconds(200);
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var list = await client.CoreV1.ListNodeAsync(cancellationToken: stop).ConfigureAwait(false);
                var nodes = new Dictionary<string, ClusterNode>(StringComparer.Ordinal);
                foreach (var item in list.Items ?? [])
                {
                    var node = ClusterNode.From(item, log);
                    nodes[node.Name] = node;
                }
                await onChange(nodes.Values).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(200);
                var version = list.Metadata?.ResourceVersion ?? "";
                while (!stop.IsCancellationRequested && version is not null)
                    version = await WatchOnce(version, nodes, onChange, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
            {
                // API server down, 401/403 (RBAC not applied yet), a malformed event: list again after a backoff.
                log($"nodes list/watch: {e.Message}; retrying in {backoff.TotalSeconds:0.#} s");
                try { await Task.Delay(backoff, stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
        }
    }

    /// <returns>The resourceVersion to watch from next, or null when the watch must start over with a list.</returns>
    private async Task<string?> WatchOnce(string version, Dictionary<string, ClusterNode> nodes,
        Func<IReadOnlyCollection<ClusterNode>, Task> onChange, CancellationToken stop)
    {
        var baseUri = client.BaseUri.ToString().TrimEnd('/');
        var uri = new Uri($"{baseUri}/api/v1/nodes?watch=true&allowWatchBookmarks=true&timeoutSeconds=600&resourceVersion={Uri.EscapeDataString(version)}");
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        if (client.Credentials is { } credentials)
            await credentials.ProcessHttpRequestAsync(request, stop).ConfigureAwait(false);
        using var response = await client.HttpClient.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, stop).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.Gone) return null;
        if (!response.IsSuccessStatusCode)
            throw new HttpRequestException($"watch nodes: HTTP {(int)response.StatusCode} {response.ReasonPhrase}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(stop).ConfigureAwait(false));
        while (await reader.ReadLineAsync(stop).ConfigureAwait(false) is { } line)
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var type = doc.RootElement.GetProperty("type").GetString();
            var obj = doc.RootElement.GetProperty("object");
            if (type == "ERROR")
            {
                // A Status object; 410 Gone means our resourceVersion is too old: list again.
                var code = obj.TryGetProperty("code", out var c) && c.TryGetInt32(out var n) ? n : 0;
                log($"watch nodes: ERROR {code} {(obj.TryGetProperty("message", out var m) ? m.GetString() : "")}");
                return null;
            }
            var node = KubernetesJson.Deserialize<V1Node>(obj.GetRawText());
            version = node.Metadata?.ResourceVersion ?? version;
            switch (type)
            {
                case "BOOKMARK":
                    continue;
                case "ADDED" or "MODIFIED":
                    var parsed = ClusterNode.From(node, log);
                    if (nodes.TryGetValue(parsed.Name, out var old) && SameNetwork(old, parsed)) continue;
                    nodes[parsed.Name] = parsed;
                    break;
                case "DELETED":
                    if (!nodes.Remove(node.Metadata?.Name ?? "")) continue;
                    break;
                default:
                    log($"watch nodes: ignoring event type '{type}'");
                    continue;
            }
            log($"node {node.Metadata?.Name} {type}");
            await onChange(nodes.Values).ConfigureAwait(false);
        }
        return version; // the server ended the watch (timeoutSeconds): resume where we are
    }

    /// <summary>Most Node updates are status heartbeats; only pod CIDRs and InternalIPs matter here.</summary>
    private static bool SameNetwork(ClusterNode a, ClusterNode b) =>
        a.PodCidrs.SequenceEqual(b.PodCidrs) && Equals(a.InternalV4, b.InternalV4) && Equals(a.InternalV6, b.InternalV6);
}
