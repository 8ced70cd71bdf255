using System.Text.Json.Nodes;
using PodBridge.Cri.V1;

namespace PodBridge.Cri;

/// <summary>
/// The CRI calls kubelet makes for a pod sandbox, with the request kubelet would build (metadata, hostname,
/// cgroup parent, pod network namespace, port mappings).
/// </summary>
public static class Pods
{
    public static PodSandboxConfig SandboxConfig(string name, string ns, string uid, string cgroupParent,
        IEnumerable<PortMapping>? ports = null)
    {
        var config = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = name, Namespace = ns, Uid = uid, Attempt = 0 },
            Hostname = name,
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = cgroupParent,
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Pod, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
                },
            },
        };
        if (ports is not null) config.PortMappings.AddRange(ports);
        return config;
    }

    public static async Task<string> Run(this RuntimeService.RuntimeServiceClient cri, PodSandboxConfig config, string handler,
        CancellationToken ct = default) =>
        (await cri.RunPodSandboxAsync(new RunPodSandboxRequest { Config = config, RuntimeHandler = handler },
            deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct)).PodSandboxId;

    public static async Task Stop(this RuntimeService.RuntimeServiceClient cri, string id, CancellationToken ct = default) =>
        await cri.StopPodSandboxAsync(new StopPodSandboxRequest { PodSandboxId = id },
            deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);

    public static async Task Remove(this RuntimeService.RuntimeServiceClient cri, string id, CancellationToken ct = default) =>
        await cri.RemovePodSandboxAsync(new RemovePodSandboxRequest { PodSandboxId = id },
            deadline: DateTime.UtcNow.AddSeconds(60), cancellationToken: ct);

    public static async Task<PodSandboxStatusResponse> Status(this RuntimeService.RuntimeServiceClient cri, string id,
        bool verbose = false, CancellationToken ct = default) =>
        await cri.PodSandboxStatusAsync(new PodSandboxStatusRequest { PodSandboxId = id, Verbose = verbose },
            deadline: DateTime.UtcNow.AddSeconds(30), cancellationToken: ct);

    /// <summary>
    /// The sandbox's network namespace path, from containerd's verbose status (its "info" JSON carries the OCI
    /// runtime spec the sandbox was started with).
    /// </summary>
    public static async Task<string> NetnsPath(this RuntimeService.RuntimeServiceClient cri, string id, CancellationToken ct = default)
    {
        var status = await cri.Status(id, verbose: true, ct);
        if (!status.Info.TryGetValue("info", out var json))
            throw new InvalidOperationException($"sandbox {id}: verbose status has no info");
        var namespaces = JsonNode.Parse(json)?["runtimeSpec"]?["linux"]?["namespaces"]?.AsArray() ?? [];
        return namespaces.Where(n => (string?)n?["type"] == "network").Select(n => (string?)n?["path"]).FirstOrDefault()
            ?? throw new InvalidOperationException($"sandbox {id}: no network namespace path in {json}");
    }
}
