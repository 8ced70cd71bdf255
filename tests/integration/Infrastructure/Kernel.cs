using System.Net;
using System.Text.Json.Nodes;

namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>A link as `ip -j -d link show` reports it.</summary>
public sealed record LinkState(
    int Index,
    string Name,
    int Mtu,
    string Mac,
    IReadOnlyList<string> Flags,
    string? Master,
    string? Kind,
    string? SlaveKind,
    int? PeerIndex,
    bool? Hairpin,
    int Promiscuity)
{
    public bool IsUp => Flags.Contains("UP");
}

/// <summary>One address from `ip -j addr show`; <see cref="Cidr"/> is CNI's "10.1.0.5/24" form.</summary>
public sealed record AddrState(string Family, string Local, int PrefixLen, bool Tentative)
{
    public string Cidr => $"{Local}/{PrefixLen}";
    public bool IsV6 => Family == "inet6";
    public bool IsLinkLocal => IsV6 && Local.StartsWith("fe80:", StringComparison.OrdinalIgnoreCase);
}

/// <summary>One route from `ip -j route show`; Dst "default" is normalised to 0.0.0.0/0 or ::/0.</summary>
public sealed record RouteState(string Dst, string? Gateway, string? Dev);

/// <summary>A bridge port as `bridge -j -d link show` reports it.</summary>
public sealed record BridgePortState(string Name, string Master, string? State, bool? Hairpin);

/// <summary>
/// Reads kernel state with iproute2's JSON output and returns typed records. Every method takes the netns to look
/// into (null = the namespace the tests run in). Tests may inspect with `ip`; the plugins never shell out.
/// </summary>
public static class Kernel
{
    public static async Task<IReadOnlyList<LinkState>> Links(string? ns = null, string? master = null)
    {
        var args = new List<string> { "-j", "-d", "link", "show" };
        if (master is not null) args.AddRange(["master", master]);
        var r = await Sh.Ip(ns, [.. args]);
        // `ip link show master X` fails when X does not exist: that means "no ports".
        if (!r.Ok && master is not null) return [];
        return ParseArray(r.EnsureOk().Stdout).Select(ToLink).ToList();
    }

    public static async Task<LinkState?> Link(string? ns, string name)
    {
        var r = await Sh.Ip(ns, "-j", "-d", "link", "show", "dev", name);
        if (!r.Ok) return null;   // "Device does not exist"
        return ParseArray(r.Stdout).Select(ToLink).FirstOrDefault();
    }

    public static async Task<bool> LinkExists(string? ns, string name) => await Link(ns, name) is not null;

    /// <summary>Addresses on <paramref name="dev"/>; link-local IPv6 included (filter with IsLinkLocal).</summary>
    public static async Task<IReadOnlyList<AddrState>> Addresses(string? ns, string dev)
    {
        var r = (await Sh.Ip(ns, "-j", "addr", "show", "dev", dev)).EnsureOk();
        return ParseArray(r.Stdout)
            .SelectMany(l => l?["addr_info"]?.AsArray() ?? [])
            .Where(a => a is not null)
            .Select(a => new AddrState(
                (string)a!["family"]!, (string)a["local"]!, (int)a["prefixlen"]!,
                a["tentative"] is JsonValue t && (bool)t))
            .ToList();
    }

    public static async Task<IReadOnlyList<AddrState>> GlobalAddresses(string? ns, string dev) =>
        (await Addresses(ns, dev)).Where(a => !a.IsLinkLocal).ToList();

    public static async Task<IReadOnlyList<RouteState>> Routes(string? ns, int family)
    {
        var r = (await Sh.Ip(ns, family == 6 ? "-6" : "-4", "-j", "route", "show")).EnsureOk();
        return ParseArray(r.Stdout).Select(n =>
        {
            var dst = (string)n!["dst"]!;
            if (dst == "default") dst = family == 6 ? "::/0" : "0.0.0.0/0";
            else if (!dst.Contains('/')) dst += family == 6 ? "/128" : "/32";
            return new RouteState(dst, (string?)n["gateway"], (string?)n["dev"]);
        }).ToList();
    }

    public static async Task<IReadOnlyList<BridgePortState>> BridgePorts(string? ns, string bridge)
    {
        var r = (await Sh.Run("bridge", ns is null ? ["-j", "-d", "link", "show"] : ["-n", ns, "-j", "-d", "link", "show"])).EnsureOk();
        return ParseArray(r.Stdout)
            .Where(n => (string?)n?["master"] == bridge)
            .Select(n => new BridgePortState((string)n!["ifname"]!, bridge, (string?)n["state"],
                n["hairpin"] is JsonValue h ? (bool)h : null))
            .ToList();
    }

    /// <summary>
    /// `ip netns exec NS ping -c1 -W1 ADDR`, retried a few times: the first packet may wait for ARP/ND or for a
    /// bridge port to reach forwarding state.
    /// </summary>
    public static async Task<ShResult> Ping(string fromNs, string address, int attempts = 3)
    {
        ShResult r = null!;
        for (var i = 0; i < attempts; i++)
        {
            r = await Sh.Run("ip", "netns", "exec", fromNs, "ping", "-c1", "-W1", address);
            if (r.Ok) return r;
            await Task.Delay(200);
        }
        return r;
    }

    public static async Task<string> Sysctl(string? ns, string key)
    {
        var path = "/proc/sys/" + key.Replace('.', '/');
        var r = ns is null ? await Sh.Run("cat", path) : await Sh.Run("ip", "netns", "exec", ns, "cat", path);
        return r.EnsureOk().Stdout.Trim();
    }

    public static async Task SetSysctl(string ns, string key, string value) =>
        (await Sh.Run("ip", "netns", "exec", ns, "sh", "-c", $"echo {value} > /proc/sys/{key.Replace('.', '/')}")).EnsureOk();

    /// <summary>Polls until <paramref name="condition"/> holds: netns teardown destroys veth peers asynchronously.</summary>
    public static async Task<bool> Eventually(Func<Task<bool>> condition, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(5));
        while (true)
        {
            if (await condition()) return true;
            if (DateTime.UtcNow > deadline) return false;
            await Task.Delay(50);
        }
    }

    /// <summary>The address part of a CIDR, normalised (so "fd00:0::2" equals "fd00::2").</summary>
    public static string AddressOf(string cidr) => IPAddress.Parse(cidr.Split('/')[0]).ToString();

    private static JsonArray ParseArray(string json) =>
        string.IsNullOrWhiteSpace(json) ? [] : JsonNode.Parse(json)?.AsArray() ?? [];

    private static LinkState ToLink(JsonNode? n)
    {
        var info = n!["linkinfo"];
        return new LinkState(
            (int)n["ifindex"]!,
            (string)n["ifname"]!,
            (int)n["mtu"]!,
            (string?)n["address"] ?? "",
            n["flags"]?.AsArray().Select(f => (string)f!).ToList() ?? [],
            (string?)n["master"],
            (string?)info?["info_kind"],
            (string?)info?["info_slave_kind"],
            n["link_index"] is JsonValue li ? (int)li : null,
            info?["info_slave_data"]?["hairpin"] is JsonValue h ? (bool)h : null,
            n["promiscuity"] is JsonValue p ? (int)p : 0);
    }
}
