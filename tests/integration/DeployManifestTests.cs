using System.Net;
using System.Text.Json.Nodes;
using PodBridge.IntegrationTests.Infrastructure;

namespace PodBridge.IntegrationTests;

/// <summary>
/// deploy/podbridge.yaml and deploy/kind.yaml, parsed as YAML and checked for what a cluster needs from them. No
/// cluster can run here; the image test (<see cref="ImageTests"/>) runs the container with these same args,
/// mounts and capabilities.
/// </summary>
public sealed class DeployManifestTests
{
    private static readonly IReadOnlyList<JsonObject> Docs = DeployFiles.Manifest();

    [Fact]
    public void Manifest_has_the_account_its_node_read_role_the_binding_and_the_DaemonSet()
    {
        Assert.Equal(
            [("v1", "ServiceAccount"), ("rbac.authorization.k8s.io/v1", "ClusterRole"),
             ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ("apps/v1", "DaemonSet")],
            Docs.Select(d => ((string)d["apiVersion"]!, (string)d["kind"]!)));

        var account = DeployFiles.Single(Docs, "ServiceAccount")["metadata"]!;
        Assert.Equal("kube-system", (string?)account["namespace"]);

        // Least privilege: read Nodes, nothing else.
        var role = DeployFiles.Single(Docs, "ClusterRole");
        var rule = Assert.Single(role["rules"]!.AsArray())!;
        Assert.Equal([""], Strings(rule["apiGroups"]));
        Assert.Equal(["nodes"], Strings(rule["resources"]));
        Assert.Equal(["get", "list", "watch"], Strings(rule["verbs"]).Order());

        var binding = DeployFiles.Single(Docs, "ClusterRoleBinding");
        Assert.Equal(("rbac.authorization.k8s.io", "ClusterRole", (string?)role["metadata"]!["name"]),
            ((string?)binding["roleRef"]!["apiGroup"], (string?)binding["roleRef"]!["kind"], (string?)binding["roleRef"]!["name"]));
        var subject = Assert.Single(binding["subjects"]!.AsArray())!;
        Assert.Equal(("ServiceAccount", (string?)account["name"], "kube-system"),
            ((string?)subject["kind"], (string?)subject["name"], (string?)subject["namespace"]));

        var ds = DeployFiles.DaemonSet(Docs);
        Assert.Equal("kube-system", (string?)ds["metadata"]!["namespace"]);
        Assert.Equal((string?)account["name"], (string?)DeployFiles.PodSpec(Docs)["serviceAccountName"]);
        var selector = ds["spec"]!["selector"]!["matchLabels"]!.AsObject();
        var labels = ds["spec"]!["template"]!["metadata"]!["labels"]!.AsObject();
        Assert.NotEmpty(selector);
        Assert.All(selector, kv => Assert.Equal((string?)kv.Value, (string?)labels[kv.Key]));
    }

    [Fact]
    public void DaemonSet_runs_on_every_node_in_the_node_network_before_anything_else()
    {
        var pod = DeployFiles.PodSpec(Docs);
        Assert.True((bool?)pod["hostNetwork"]);   // a YAML bool, not the string "true"
        // One toleration with operator Exists and no key/effect tolerates every taint.
        var toleration = Assert.Single(pod["tolerations"]!.AsArray())!.AsObject();
        Assert.Equal([("operator", "Exists")], toleration.Select(kv => (kv.Key, (string?)kv.Value)));
        Assert.Equal("system-node-critical", (string?)pod["priorityClassName"]);
        Assert.Equal(DeployFiles.DefaultImageTag(), (string?)DeployFiles.AgentContainer(Docs)["image"]);
        // The image is loaded into the cluster (kind load / minikube image load), never pulled.
        Assert.Equal("Never", (string?)DeployFiles.AgentContainer(Docs)["imagePullPolicy"]);
    }

    [Fact]
    public void Agent_gets_its_node_name_a_readiness_probe_on_its_healthz_port_and_resources()
    {
        var c = DeployFiles.AgentContainer(Docs);
        var env = Assert.Single(c["env"]!.AsArray(), e => (string?)e!["name"] == "NODE_NAME")!;
        Assert.Null(env["value"]);
        Assert.Equal("spec.nodeName", (string?)env["valueFrom"]!["fieldRef"]!["fieldPath"]);

        var probe = c["readinessProbe"]!["httpGet"]!;
        Assert.Equal("/healthz", (string?)probe["path"]);
        // hostNetwork: kubelet probes the node's own loopback, where the agent listens.
        Assert.Equal(IPAddress.Loopback, IPAddress.Parse((string)probe["host"]!));
        Assert.Equal(long.Parse(DeployFiles.Flag(c, "--healthz-port") ?? "missing"), (long?)probe["port"]);

        var resources = c["resources"]!;
        Assert.NotNull(resources["requests"]!["cpu"]);
        Assert.NotNull(resources["requests"]!["memory"]);
        Assert.NotNull(resources["limits"]!["memory"]);
    }

    [Fact]
    public void Agent_is_not_privileged_and_keeps_only_NET_ADMIN()
    {
        var sc = DeployFiles.AgentContainer(Docs)["securityContext"]!;
        Assert.False((bool?)sc["privileged"] ?? false);
        Assert.False((bool?)sc["allowPrivilegeEscalation"]);
        Assert.True((bool?)sc["readOnlyRootFilesystem"]);
        Assert.Equal(["ALL"], Strings(sc["capabilities"]!["drop"]));
        Assert.Equal(["NET_ADMIN"], Strings(sc["capabilities"]!["add"]));
        Assert.Null(DeployFiles.PodSpec(Docs)["hostPID"]);
    }

    [Fact]
    public void Host_CNI_dirs_are_mounted_where_the_agent_flags_point()
    {
        var c = DeployFiles.AgentContainer(Docs);
        var mounts = DeployFiles.HostMounts(Docs);
        Assert.Equal(mounts.Count, mounts.Select(m => m.MountPath).Distinct().Count());

        HostMount Host(string path) => Assert.Single(mounts, m => m.HostPath == path);
        var bin = Host("/opt/cni/bin");
        var conf = Host("/etc/cni/net.d");
        var data = Host("/var/lib/cni");
        Assert.Equal(bin.MountPath, DeployFiles.Flag(c, "--cni-bin-dir"));
        Assert.Equal(conf.MountPath, DeployFiles.Flag(c, "--cni-conf-dir"));
        // The data dir goes into the conflist, which the plugin reads on the host: same path inside and outside.
        Assert.Equal("/var/lib/cni", data.MountPath);
        Assert.StartsWith("/var/lib/cni/", DeployFiles.Flag(c, "--data-dir"));
        Assert.All([bin, conf, data], m => Assert.Equal(("DirectoryOrCreate", false), (m.Type, m.ReadOnly)));

        // The node's glibc, read-only, for the agent's "can this node run the binaries" check.
        var libc = Assert.Single(mounts, m => m.MountPath == DeployFiles.Flag(c, "--node-libc"));
        Assert.Equal(("File", true), (libc.Type, libc.ReadOnly));
        Assert.EndsWith("/libc.so.6", libc.HostPath);

        Assert.Equal(4, mounts.Count);   // nothing else of the host
    }

    [Fact]
    public void Kind_config_has_three_nodes_no_default_CNI_and_a_pod_subnet()
    {
        var kind = Assert.Single(Yaml.LoadAll(DeployFiles.KindPath));
        Assert.Equal(("kind.x-k8s.io/v1alpha4", "Cluster"), ((string?)kind["apiVersion"], (string?)kind["kind"]));
        var net = kind["networking"]!;
        Assert.True((bool?)net["disableDefaultCNI"]);
        var subnet = (string)net["podSubnet"]!;
        Assert.True(IPNetwork.TryParse(subnet, out var pods), subnet);
        Assert.InRange(pods.PrefixLength, 8, 16);   // room for a /24 per node
        Assert.Equal(["control-plane", "worker", "worker"], kind["nodes"]!.AsArray().Select(n => (string)n!["role"]!));
    }

    [Fact]
    public void Readme_commands_name_the_files_image_and_cluster_that_exist()
    {
        var readme = File.ReadAllText(Path.Combine(Binaries.RepoRoot, "README.md"));
        var kindName = (string?)Assert.Single(Yaml.LoadAll(DeployFiles.KindPath))["name"];
        var image = DeployFiles.DefaultImageTag();
        Assert.Contains("## Kubernetes (kind, minikube)", readme);
        Assert.Contains("deploy/build-image.sh", readme);
        Assert.Contains("kind create cluster --config deploy/kind.yaml", readme);
        Assert.Contains($"kind load docker-image {image} --name {kindName}", readme);
        Assert.Contains("kubectl apply -f deploy/podbridge.yaml", readme);
        Assert.Contains("minikube start --cni=deploy/podbridge.yaml", readme);
        Assert.Contains($"minikube image load {image}", readme);
    }

    private static IEnumerable<string> Strings(JsonNode? array) => array!.AsArray().Select(x => (string)x!);
}
