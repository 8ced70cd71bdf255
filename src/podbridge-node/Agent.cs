using System.Diagnostics;
using k8s;

namespace PodBridge.Node;

/// <summary>
/// The node agent: install the binaries, then turn every change of the Nodes into a desired state and apply it
/// with one idempotent reconcile (conflist, routes, masquerade). It never undoes anything on exit: pods keep
/// their network while the agent restarts or is upgraded.
/// </summary>
public sealed class Agent(AgentOptions options, Action<string> log)
{
    /// <summary>Repairs what someone else removed (a route, our nft table) even when no Node changes.</summary>
    private static readonly TimeSpan Resync = TimeSpan.FromSeconds(30);

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly RouteReconciler _routes = new(log);
    private readonly Masquerade _masquerade = new(log);
    private readonly Stopwatch _since = Stopwatch.StartNew();
    private IReadOnlyCollection<ClusterNode> _nodes = [];
    private Healthz? _healthz;
    private bool _conflistReady;

    public async Task<int> RunAsync(CancellationToken stop)
    {
        log($"podbridge-node starting: node {options.NodeName}, bin {options.CniBinDir}, conf {options.CniConfDir}, data {options.DataDir}");
        if (options.InstallBinaries) Installer.Install(options.SourceDir, options.CniBinDir, options.NodeLibc, log);

        if (options.HealthzPort != 0)
        {
            _healthz = new Healthz(options.HealthzPort, log);
            _healthz.Start(stop);
        }

        var config = options.Kubeconfig is { } path
            ? KubernetesClientConfiguration.BuildConfigFromConfigFile(path)
            : KubernetesClientConfiguration.InClusterConfig();
        using var client = new Kubernetes(config);

        _ = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                try { await Task.Delay(Resync, stop).ConfigureAwait(false); }
                catch (OperationCanceledException) { return; }
                await ReconcileAsync(null, stop).ConfigureAwait(false);
            }
        }, stop);

        await new NodeWatcher(client, log).RunAsync(nodes => ReconcileAsync([.. nodes], stop), stop).ConfigureAwait(false);
        log("SIGTERM: exiting; the conflist, routes and masquerade rules stay in place");
        return 0;
    }

    private async Task ReconcileAsync(IReadOnlyCollection<ClusterNode>? nodes, CancellationToken stop)
    {
        try { await _gate.WaitAsync(stop).ConfigureAwait(false); }
        catch (OperationCanceledException) { return; }
        try
        {
            if (nodes is not null) _nodes = nodes;
            if (stop.IsCancellationRequested) return;
            Reconcile(DesiredState.From(options.NodeName, _nodes, log));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The reconcile boundary: the next change or the resync tries again. Whatever one Node object or one
            // kernel call did wrong must not kill the agent, which would stop routing for every other node too.
            log($"reconcile failed: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            _gate.Release();
        }
    }

    private void Reconcile(DesiredState desired)
    {
        _routes.Reconcile(desired.Routes);

        if (desired.Self is not { PodCidrs.Count: > 0 } self)
        {
            var reason = desired.Self is null ? $"Node {options.NodeName} not found" : $"Node {options.NodeName} has no spec.podCIDRs yet";
            _healthz?.SetWaiting(reason);
            if (!_conflistReady) log($"waiting: {reason}");
            return;
        }

        _masquerade.Reconcile(self.PodCidrs, desired.ClusterCidrs);

        var path = Path.Combine(options.CniConfDir, Conflist.FileName);
        var content = Conflist.Render(self.PodCidrs, options.DataDir);
        const UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        if (AtomicFile.WriteIfChanged(path, content, mode))
            log($"wrote {path} (pod CIDRs {string.Join(", ", self.PodCidrs)}) {_since.ElapsedMilliseconds} ms after start");
        if (!_conflistReady)
        {
            _conflistReady = true;
            _healthz?.SetReady();
            log($"ready: {path} is current, {_since.ElapsedMilliseconds} ms after start");
        }
    }
}
