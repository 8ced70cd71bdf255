using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace PodBridge.Cri;

/// <summary>
/// The shared NAT state Debian's portmap creates in the host netns the first time a private containerd runs it, and
/// never removes: the chains CNI-HOSTPORT-DNAT/-MASQ/-SETMARK with their jumps from PREROUTING, OUTPUT and
/// POSTROUTING (iptables, and ip6tables when IPv6 is involved), and an empty <c>table ip6 nat</c> (portmap's DEL
/// tears its per-pod chain down with go-iptables' ClearChain, an <c>ip6tables -t nat -N</c>, which makes iptables-nft
/// create the table; the following <c>-X</c> leaves it empty). The first private containerd of this process records
/// what exists (<see cref="Acquire"/>); the last one to go (<see cref="Release"/>) removes what did not exist then —
/// only while it holds nothing but portmap's fixed rules, i.e. no per-pod CNI-DN-* rules of anyone else. The record is
/// also written to a file, so that the sweep of a crashed run can do the same (<see cref="SweepCrashedRun"/>).
/// </summary>
public static class HostPortmapState
{
    public static readonly string[] Chains = ["CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"];
    /// <summary>The record file is the containerd dir's path plus this.</summary>
    public const string RecordSuffix = "-hostnat";
    private static readonly string[] Families = ["ip", "ip6"];
    private static readonly HashSet<string> BuiltinNatChains = ["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"];

    private static readonly Lock Gate = new();
    private static int _users;
    private static HashSet<string>? _before;
    private static string? _recordFile;

    /// <summary>What exists now: "ip chain CNI-HOSTPORT-DNAT", ..., "table ip6 nat".</summary>
    public static HashSet<string> Current()
    {
        var state = new HashSet<string>();
        foreach (var family in Families)
        {
            var saved = Save(family) ?? "";
            foreach (var line in saved.Split('\n'))
                if (line.StartsWith(":CNI-HOSTPORT-", StringComparison.Ordinal) && line.Split(' ')[0][1..] is var chain && Chains.Contains(chain))
                    state.Add($"{family} chain {chain}");
        }
        foreach (var line in (Output("/usr/sbin/nft", null, "list", "tables") ?? "").Split('\n'))
            if (line.Trim() is "table ip nat" or "table ip6 nat") state.Add(line.Trim());
        return state;
    }

    /// <summary>One more private containerd; the first records the host's state (in memory and in <paramref name="recordFile"/>).</summary>
    public static void Acquire(string recordFile)
    {
        lock (Gate)
        {
            if (_users++ > 0) return;
            _before = Current();
            _recordFile = recordFile;
            File.WriteAllLines(recordFile, _before.Order(StringComparer.Ordinal));
        }
    }

    /// <summary>
    /// One private containerd fewer; the last removes what was created since <see cref="Acquire"/> and returns what it
    /// created and could not remove (empty when nothing is left, or when other containerds of this process still run).
    /// </summary>
    public static IReadOnlyList<string> Release()
    {
        lock (Gate)
        {
            if (_users == 0 || --_users > 0) return [];
            var left = RemoveCreatedSince(_before!);
            if (_recordFile is not null) try { File.Delete(_recordFile); } catch (IOException) { }
            _before = null;
            _recordFile = null;
            return left;
        }
    }

    /// <summary>
    /// For the sweep of a dead run: removes what its record file proves it created — only when no containerd at all
    /// runs on this machine any more (none could be between pods with the chains in use), and only while the chains
    /// hold nothing but portmap's fixed rules. Deletes the record.
    /// </summary>
    public static void SweepCrashedRun(string recordFile)
    {
        if (!File.Exists(recordFile)) return;
        var anyContainerd = Containerd.ProcessesWhoseCommandLine(a => a.FirstOrDefault()?.EndsWith("containerd", StringComparison.Ordinal) == true).Count > 0;
        if (!anyContainerd)
            RemoveCreatedSince(File.ReadAllLines(recordFile).ToHashSet());
        File.Delete(recordFile);
    }

    /// <summary>Removes what exists now and not in <paramref name="before"/>; returns what of that is still there.</summary>
    public static IReadOnlyList<string> RemoveCreatedSince(IReadOnlySet<string> before)
    {
        foreach (var family in Families)
        {
            if (Chains.Any(c => before.Contains($"{family} chain {c}"))) continue;   // not ours: someone had them before
            var saved = Save(family);
            if (saved is null) continue;
            var lines = saved.Split('\n');
            var present = Chains.Where(c => lines.Contains($":{c} - [0:0]") || lines.Any(l => l.StartsWith($":{c} ", StringComparison.Ordinal))).ToList();
            if (present.Count == 0) continue;
            var script = new StringBuilder("*nat\n");
            var onlyFixed = true;
            foreach (var line in lines.Where(l => l.StartsWith("-A ", StringComparison.Ordinal)))
            {
                var parts = line.Split(' ');
                var chain = parts[1];
                var jump = line.LastIndexOf(" -j ", StringComparison.Ordinal) is var j and >= 0 ? line[(j + 4)..].Split(' ')[0] : "";
                if (Chains.Contains(chain))
                {
                    // portmap's fixed rules; anything else (a per-pod jump in CNI-HOSTPORT-DNAT) means someone uses them.
                    onlyFixed &= (chain, jump) is ("CNI-HOSTPORT-MASQ", "MASQUERADE") or ("CNI-HOSTPORT-SETMARK", "MARK");
                }
                else if (Chains.Contains(jump))
                {
                    if ((chain, jump) is ("PREROUTING" or "OUTPUT", "CNI-HOSTPORT-DNAT") or ("POSTROUTING", "CNI-HOSTPORT-MASQ"))
                        script.Append("-D ").Append(line.AsSpan(3)).Append('\n');
                    else
                        onlyFixed = false;   // e.g. a CNI-DN-* chain's jump to CNI-HOSTPORT-SETMARK: a live mapping
                }
            }
            if (!onlyFixed) continue;
            foreach (var c in present) script.Append($"-F {c}\n");
            foreach (var c in present) script.Append($"-X {c}\n");
            script.Append("COMMIT\n");
            Output($"/usr/sbin/{Tool(family)}-restore", script.ToString(), "--noflush");
        }
        foreach (var family in Families)
        {
            var table = $"table {family} nat";
            if (before.Contains(table) || !Current().Contains(table) || !EmptyNatTable(family)) continue;
            Output("/usr/sbin/nft", null, "delete", "table", family, "nat");
        }
        return Current().Except(before).Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>No rule and no chain but iptables-nft's built-in ones (which it recreates whenever needed).</summary>
    private static bool EmptyNatTable(string family)
    {
        var json = Output("/usr/sbin/nft", null, "-j", "list", "table", family, "nat");
        if (json is null) return false;
        using var doc = JsonDocument.Parse(json);
        foreach (var item in doc.RootElement.GetProperty("nftables").EnumerateArray())
        {
            if (item.TryGetProperty("rule", out _) || item.TryGetProperty("set", out _) || item.TryGetProperty("map", out _)) return false;
            if (item.TryGetProperty("chain", out var chain) && !BuiltinNatChains.Contains(chain.GetProperty("name").GetString() ?? "")) return false;
        }
        return true;
    }

    private static string Tool(string family) => family == "ip" ? "iptables" : "ip6tables";

    private static string? Save(string family) => Output($"/usr/sbin/{Tool(family)}-save", null, "-t", "nat");

    private static string? Output(string file, string? stdin, params string[] args) => Containerd.RunWithInput(file, stdin, args);
}
