using System.Net;
using System.Text.Json;
using PodBridge.Cni;
using PodBridge.Ipam;
using PodBridge.Netlink;

namespace PodBridge.Plugin.Cli;

/// <summary>
/// <c>podbridge doctor</c>: the node as the plugin needs it, in the network namespace it runs in. Every check
/// prints ok, or what is wrong, what it means for pods, and the command that fixes it. Exit 0 healthy, 1 findings.
/// </summary>
internal sealed class Doctor(CliOptions options)
{
    private sealed record Check(string Name, bool Ok, string Detail, string? Meaning = null, string? Fix = null);

    private readonly List<Check> _checks = [];

    private void Ok(string name, string detail) => _checks.Add(new Check(name, true, detail));
    private void Bad(string name, string detail, string meaning, string fix) => _checks.Add(new Check(name, false, detail, meaning, fix));

    public int Run(TextWriter stdout)
    {
        var networks = ConfDir.Networks(options.ConfDir, options.DataDir);
        CheckSysctls(networks);
        CheckConfig();
        using (var rt = RtNetlinkSocket.Open())
        {
            var states = NetworkState.ReadAll(options, rt);
            try
            {
                foreach (var s in states) CheckNetwork(s, rt);
            }
            finally
            {
                foreach (var s in states) s.Dispose();
            }
        }
        Print(stdout);
        return _checks.All(c => c.Ok) ? 0 : 1;
    }

    private void CheckSysctls(List<PodNetwork> networks)
    {
        const string nf = "/proc/sys/net/bridge/bridge-nf-call-iptables";
        var value = Sysctl.Read(nf)?.Trim();
        if (value is null)
            Bad("br_netfilter", $"{nf} does not exist: the br_netfilter module is not loaded",
                "bridged pod-to-pod traffic bypasses iptables/nftables, so kube-proxy's Service rules and NetworkPolicies do not apply to it",
                "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/podbridge.conf");
        else if (value != "1")
            Bad("bridge-nf-call-iptables", $"net.bridge.bridge-nf-call-iptables = {value}",
                "bridged pod-to-pod traffic bypasses iptables, so kube-proxy's Service rules do not apply to it (the next ADD sets it again)",
                "sysctl -w net.bridge.bridge-nf-call-iptables=1 net.bridge.bridge-nf-call-ip6tables=1");
        else Ok("bridge-nf-call-iptables", "br_netfilter loaded, net.bridge.bridge-nf-call-iptables = 1");

        if (networks.Any(n => n.Config.Bridge.IsGateway))
        {
            var fwd = Sysctl.Read("/proc/sys/net/ipv4/ip_forward")?.Trim();
            if (fwd != "1")
                Bad("ip_forward", $"net.ipv4.ip_forward = {fwd ?? "unknown"} on a node whose networks route (isGateway)",
                    "pods reach nothing beyond their bridge: the node does not forward their packets (the next ADD sets it again)",
                    "sysctl -w net.ipv4.ip_forward=1");
            else Ok("ip_forward", "net.ipv4.ip_forward = 1");
        }
    }

    private void CheckConfig()
    {
        var files = ConfDir.Files(options.ConfDir);
        if (files.Count == 0)
        {
            Bad("conflist", $"no .conf, .conflist or .json file in {options.ConfDir}",
                "runtimes report the node's network as not ready; no pod can start",
                $"./install.sh (installs conf/10-podbridge.conflist), or write one into {options.ConfDir}");
            return;
        }
        var chosen = files[0];
        var validator = new Validator(options.BinDir, Validator.NodeAddresses);
        validator.CheckFile(chosen);
        if (validator.Findings.Count > 0)
            Bad("conflist", $"{chosen} (the file runtimes use) has {validator.Findings.Count} problem(s): {string.Join("; ", validator.Findings.Select(f => f.ToString()))}",
                "pods of this network fail to start, or start with a broken network",
                $"podbridge validate {chosen}   (then edit it)");
        else Ok("conflist", $"runtimes use {chosen}; it validates");

        using var doc = TryParse(chosen);
        if (doc is null) return;
        foreach (var (_, path, plugin, _) in ConfDir.Plugins(doc.RootElement))
        {
            if (!plugin.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String) continue;
            CheckBinary(t.GetString()!);
        }
    }

    private static JsonDocument? TryParse(string file)
    {
        try { return JsonDocument.Parse(File.ReadAllBytes(file)); }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>Present, executable, and it starts (a binary built against a newer glibc fails right here).</summary>
    private void CheckBinary(string type)
    {
        var path = options.BinDir.Split(':', StringSplitOptions.RemoveEmptyEntries).Select(d => Path.Combine(d, type)).FirstOrDefault(File.Exists);
        if (path is null)
        {
            Bad($"plugin {type}", $"{type} is not in {options.BinDir}", "every pod of this network fails at ADD",
                type.StartsWith("podbridge", StringComparison.Ordinal) ? "./install.sh" : $"install the {type} plugin into {options.BinDir}");
            return;
        }
        try
        {
            var r = ChildProcess.Run(path, [], new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }, [], TimeSpan.FromSeconds(10), captureStderr: true);
            var stdout = System.Text.Encoding.UTF8.GetString(r.Stdout);
            if (r.ExitCode == 0 && stdout.Contains("supportedVersions", StringComparison.Ordinal)) Ok($"plugin {type}", $"{path} runs (VERSION answers)");
            else Bad($"plugin {type}", $"{path} VERSION exited {r.ExitCode}: {r.Stderr.Trim()} {stdout.Trim()}",
                "the runtime cannot run it, so every pod of this network fails (a missing library, e.g. a newer glibc, shows here)",
                $"reinstall it into {options.BinDir} (./install.sh for podbridge)");
        }
        catch (Exception e) when (e is FileNotFoundException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            Bad($"plugin {type}", $"{path} cannot be started: {e.Message}", "every pod of this network fails at ADD",
                $"chmod +x {path}, or reinstall it");
        }
    }

    private void CheckNetwork(NetworkState s, RtNetlinkSocket rt)
    {
        var n = s.Network;
        var name = $"network {n.Name}";
        if (n.Ipam is { } ipam)
        {
            if (s.StoreError is not null)
                Bad($"{name} lease store", s.StoreError, "ADD, DEL and GC of this network fail until it is repaired",
                    $"podbridge-ipam repair --data-dir {ipam.DataDir}");
            else if (!s.StoreExists) Ok($"{name} lease store", $"no database yet in {ipam.DataDir} (created by the first ADD)");
            else Ok($"{name} lease store", $"{ipam.DataDir}: opens cleanly, {s.Leases.Count} lease(s)");

            foreach (var d in s.Dead)
                Bad($"{name} dead lease", $"{string.Join(", ", d.Leases.Select(l => l.Address))} held by {d.ContainerId}/{d.IfName}: {d.Why}",
                    "the address stays out of the pool until an ADD finds the pool exhausted and reclaims it",
                    "podbridge gc");
            foreach (var (link, why) in s.OrphanVeths())
                Bad($"{name} leaked veth", $"{link.Name} on bridge {n.Bridge}: {why}",
                    "a link without a pod: it costs a bridge port and may keep a pod's old netns alive",
                    "podbridge gc");
            foreach (var (subnet, address) in s.OrphanMasquerade())
                Bad($"{name} masquerade", $"{address} is in nftables set {MasqueradeNft.Table} {MasqueradeNft.SetName(n.Name, subnet)} with no live lease",
                    "traffic from that address would be masqueraded if a foreign host used it", "podbridge gc");
        }

        if (s.BridgeLink is null)
        {
            Ok($"{name} bridge", $"{n.Bridge} does not exist yet (the first ADD creates it)");
            return;
        }
        if (!n.Config.Bridge.IsGateway || n.Ipam is null)
        {
            Ok($"{name} bridge", $"{n.Bridge} exists, {s.Veths.Count} veth port(s)");
            return;
        }
        var have = rt.ListAddresses(s.BridgeLink.Index).Select(a => (a.Address, a.PrefixLength)).ToList();
        foreach (var set in n.Ipam.RangeSets)
        {
            var r = set.Ranges[0];
            var gw = r.Gateway.ToIPAddress();
            if (have.Contains((gw, r.Prefix))) Ok($"{name} gateway", $"{n.Bridge} has {gw}/{r.Prefix}");
            else
            {
                var other = have.Where(h => h.Address.AddressFamily == gw.AddressFamily && !IPAddress.IsLoopback(h.Address) && !h.Address.IsIPv6LinkLocal).ToList();
                Bad($"{name} gateway", $"{n.Bridge} lacks the gateway {gw}/{r.Prefix}" + (other.Count > 0 ? $" (it has {string.Join(", ", other.Select(o => $"{o.Address}/{o.PrefixLength}"))})" : ""),
                    "pods of this network have no working default gateway",
                    $"ip addr add {gw}/{r.Prefix} dev {n.Bridge}   (the next ADD adds it too{(other.Count > 0 ? "; with forceAddress: true it also replaces the old one" : "")})");
            }
        }
    }

    private void Print(TextWriter stdout)
    {
        if (options.Json)
        {
            using var ms = new MemoryStream();
            using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
            {
                w.WriteStartObject();
                w.WriteBoolean("healthy", _checks.All(c => c.Ok));
                w.WriteStartArray("checks");
                foreach (var c in _checks)
                {
                    w.WriteStartObject();
                    w.WriteString("check", c.Name);
                    w.WriteBoolean("ok", c.Ok);
                    w.WriteString("detail", c.Detail);
                    if (c.Meaning is not null) w.WriteString("meaning", c.Meaning);
                    if (c.Fix is not null) w.WriteString("fix", c.Fix);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            stdout.WriteLine(System.Text.Encoding.UTF8.GetString(ms.ToArray()));
            return;
        }
        foreach (var c in _checks)
        {
            stdout.WriteLine($"{(c.Ok ? "ok  " : "FAIL")}  {c.Name}: {c.Detail}");
            if (c.Ok) continue;
            stdout.WriteLine($"      means: {c.Meaning}");
            stdout.WriteLine($"      fix:   {c.Fix}");
        }
        var bad = _checks.Count(c => !c.Ok);
        stdout.WriteLine(bad == 0 ? "healthy" : $"{bad} finding(s)");
    }
}
