using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using PodBridge.Cni;
using PodBridge.Ipam;
using PodBridge.Netlink;

namespace PodBridge.Plugin.Cli;

/// <summary>A problem in a config file: where (JSON path, line, column), what, and how bad.</summary>
internal sealed record Finding(string File, string Path, int Line, int Column, string Message, bool Warning = false)
{
    public override string ToString() =>
        $"{File}:{Line}:{Column}: {(Warning ? "warning: " : "")}{(Path.Length > 0 ? Path + ": " : "")}{Message}";
}

/// <summary>
/// <c>podbridge validate</c>: every check ADD makes (through <see cref="ConfigAdapter"/>, so the two never
/// disagree), then what ADD cannot know from one config but a node can: every range problem at once rather than
/// the first, pools overlapping this node's addresses, chain plugins missing from the bin dir, conflists runtimes
/// never read, an unwritable dataDir.
/// </summary>
internal sealed partial class Validator(string binDir, Func<IReadOnlyList<(string Link, IPAddress Address)>> nodeAddresses)
{
    private readonly List<Finding> _findings = [];
    private IReadOnlyList<(string Link, IPAddress Address)>? _addresses;

    /// <summary>In file order, then line and column order, as an editor would walk them.</summary>
    public IReadOnlyList<Finding> Findings => _findings.OrderBy(f => f.File, StringComparer.Ordinal).ThenBy(f => f.Line).ThenBy(f => f.Column).ToList();

    /// <summary>A file or every config file of a directory; returns the files checked.</summary>
    public List<string> Run(string target)
    {
        if (Directory.Exists(target))
        {
            var files = ConfDir.Files(target);
            if (files.Count == 0)
                _findings.Add(new Finding(target, "", 0, 0, "no .conf, .conflist or .json file: runtimes report the network as not ready"));
            for (var i = 0; i < files.Count; i++)
            {
                CheckFile(files[i]);
                if (i > 0)
                    _findings.Add(new Finding(files[i], "", 1, 1,
                        $"never read by containerd, and not CRI-O's default network: {Path.GetFileName(files[0])} sorts first (rename it, or remove the other)", Warning: true));
            }
            return files;
        }
        CheckFile(target);
        return [target];
    }

    public void CheckFile(string file)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _findings.Add(new Finding(file, "", 0, 0, $"cannot read: {e.Message}"));
            return;
        }
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            var message = e.Message;
            var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0) message = message[..cut].TrimEnd('.', ' ');
            cut = message.IndexOf(" Change the reader options", StringComparison.Ordinal);
            if (cut > 0) message = message[..cut].TrimEnd('.', ' ');
            _findings.Add(new Finding(file, "", (int)(e.LineNumber ?? 0) + 1, (int)(e.BytePositionInLine ?? 0) + 1, $"invalid JSON: {message}"));
            return;
        }
        using (doc)
        {
            var positions = JsonPositions.Map(bytes);
            var fileFindings = new List<(string Path, string Message, bool Warning)>();
            CheckDocument(doc.RootElement, fileFindings);
            foreach (var (path, message, warning) in fileFindings)
            {
                var (line, column) = positions.Find(path);
                _findings.Add(new Finding(file, path, line, column, message, warning));
            }
        }
    }

    private void CheckDocument(JsonElement root, List<(string Path, string Message, bool Warning)> found)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            found.Add(("", "a network config must be a JSON object", false));
            return;
        }
        if (root.TryGetProperty("cniVersion", out var version) && version.ValueKind == JsonValueKind.String
            && !CniVersion.IsSupported(version.GetString()!))
            found.Add(("cniVersion", $"{version.GetString()} is not supported (supported: {string.Join(", ", CniVersion.Supported)})", false));
        var isList = root.TryGetProperty("plugins", out var pluginsElement);
        if (isList)
        {
            if (!root.TryGetProperty("name", out var n) || n.ValueKind != JsonValueKind.String || n.GetString()!.Length == 0)
                found.Add(("name", "missing: a conflist needs a network name", false));
            if (!root.TryGetProperty("cniVersion", out var v) || v.ValueKind != JsonValueKind.String)
                found.Add(("cniVersion", "missing", false));
            if (pluginsElement.ValueKind != JsonValueKind.Array || pluginsElement.GetArrayLength() == 0)
            {
                found.Add(("plugins", "must be a non-empty array of plugin configs", false));
                return;
            }
            var i = 0;
            foreach (var p in pluginsElement.EnumerateArray())
            {
                if (p.ValueKind != JsonValueKind.Object) found.Add(($"plugins[{i}]", "must be an object", false));
                i++;
            }
        }

        foreach (var (_, path, plugin, json) in ConfDir.Plugins(root))
        {
            var prefix = path.Length == 0 ? "" : path + ".";
            var ownCount = found.Count;
            string? type = null;
            if (!plugin.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String || (type = t.GetString())!.Length == 0)
                found.Add(($"{prefix}type", "missing: every plugin entry names its executable", false));
            else if (FindBinary(type) is null)
                found.Add(($"{prefix}type", $"'{type}' is not in the CNI bin dir {binDir}: runtimes fail every pod of this network (install it there)", false));

            if (type != "podbridge") continue;
            CheckBridge(plugin, prefix, found);
            if (plugin.TryGetProperty("ipam", out var ipam) && ipam.ValueKind == JsonValueKind.Object
                && ipam.TryGetProperty("type", out var it) && it.ValueKind == JsonValueKind.String && it.GetString() == BridgeConfig.EmbeddedIpam)
                CheckIpam(plugin, ipam, prefix + "ipam", found);

            // ADD's own verdict: reported unless one of the checks above already named the same place.
            try
            {
                ConfigAdapter.Load(json);
            }
            catch (CniException e)
            {
                var (where, what) = SplitPath(e.Message, e.Details);
                var full = where.Length == 0 ? path : prefix + where;
                if (!found.Skip(ownCount).Any(f => !f.Warning && (f.Path == full || f.Path.StartsWith(full + ".", StringComparison.Ordinal) || full.StartsWith(f.Path + ".", StringComparison.Ordinal))))
                    found.Add((full, $"{what} (ADD fails with CNI error {(int)e.Code})", false));
            }
        }
    }

    private string? FindBinary(string type)
    {
        foreach (var dir in binDir.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var p = Path.Combine(dir, type);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    private static void CheckBridge(JsonElement plugin, string prefix, List<(string, string, bool)> found)
    {
        if (plugin.TryGetProperty("bridge", out var b) && b.ValueKind == JsonValueKind.String)
        {
            var bytes = Encoding.UTF8.GetByteCount(b.GetString()!);
            if (bytes > 15)
                found.Add(($"{prefix}bridge", $"'{b.GetString()}' is {bytes} bytes; Linux interface names have at most 15", false));
        }
        if (plugin.TryGetProperty("logFormat", out var f) && !(f.ValueKind == JsonValueKind.String && Log.IsValidFormat(f.GetString())))
            found.Add(($"{prefix}logFormat", $"{f.GetRawText()} is not \"text\" or \"json\" (the plugin falls back to text)", false));
        if (plugin.TryGetProperty("logMaxSize", out var m) && !(m.ValueKind == JsonValueKind.Number && m.TryGetInt32(out var max) && max >= 0))
            found.Add(($"{prefix}logMaxSize", $"{m.GetRawText()} is not a size in bytes (0 to 2147483647)", false));
    }

    private sealed record OwnRange(string Path, IpAddr Network, int Prefix, IpAddr Start, IpAddr End);

    private void CheckIpam(JsonElement plugin, JsonElement ipam, string path, List<(string, string, bool)> found)
    {
        var ranges = new List<(OwnRange Range, int Set)>();
        if (ipam.TryGetProperty("subnet", out _))
            if (CheckRange(ipam, path, found) is { } legacy) ranges.Add((legacy, -1));
        if (ipam.TryGetProperty("ranges", out var sets) && sets.ValueKind == JsonValueKind.Array)
        {
            var i = 0;
            foreach (var set in sets.EnumerateArray())
            {
                if (set.ValueKind == JsonValueKind.Array)
                {
                    var j = 0;
                    foreach (var r in set.EnumerateArray())
                    {
                        if (r.ValueKind == JsonValueKind.Object && CheckRange(r, $"{path}.ranges[{i}][{j}]", found) is { } range)
                            ranges.Add((range, i));
                        j++;
                    }
                }
                i++;
            }
        }

        for (var a = 0; a < ranges.Count; a++)
            for (var b = 0; b < a; b++)
            {
                var (x, y) = (ranges[a].Range, ranges[b].Range);
                if (x.Network.IsV6 == y.Network.IsV6 && x.Start <= y.End && y.Start <= x.End)
                    found.Add((x.Path, $"{x.Start}-{x.End} overlaps {y.Path} ({y.Start}-{y.End})", false));
            }

        // A pool address already on another interface of this node would be handed to a pod and collide.
        var bridge = plugin.TryGetProperty("bridge", out var br) && br.ValueKind == JsonValueKind.String ? br.GetString() : BridgeConfig.DefaultBridge;
        _addresses ??= nodeAddresses();
        foreach (var (range, _) in ranges)
            foreach (var (link, address) in _addresses)
            {
                if (link == bridge) continue; // the gateway on our own bridge is expected
                var a = IpAddr.FromIPAddress(address);
                if (a.IsV6 == range.Network.IsV6 && a >= range.Start && a <= range.End)
                    found.Add((range.Path, $"the pool {range.Start}-{range.End} contains {address}, an address of {link} on this node: a pod given it would collide", false));
            }

        var dataDir = ipam.TryGetProperty("dataDir", out var dd) && dd.ValueKind == JsonValueKind.String ? dd.GetString()! : IpamSettings.DefaultDataDir;
        if (Path.IsPathRooted(dataDir) && WhyNotWritable(dataDir) is { } why)
            found.Add(($"{path}.dataDir", $"{dataDir} is not writable ({why}): every ADD fails with code 5", false));
    }

    private static OwnRange? CheckRange(JsonElement r, string path, List<(string, string, bool)> found)
    {
        if (!r.TryGetProperty("subnet", out var s) || s.ValueKind != JsonValueKind.String)
        {
            found.Add(($"{path}.subnet", "missing", false));
            return null;
        }
        if (!IpAddr.TryParseCidr(s.GetString(), out var subnet, out var prefix))
        {
            found.Add(($"{path}.subnet", $"{s.GetString()} is not a subnet in CIDR form (like 10.1.0.0/16)", false));
            return null;
        }
        var family = subnet.IsV6 ? "IPv6" : "IPv4";
        var mask = IpAddr.Mask(prefix, subnet.IsV6);
        var network = subnet with { Value = subnet.Value & mask };
        var last = network with { Value = network.Value | (~mask & subnet.FamilyMax) };
        var ok = true;
        IpAddr? Field(string name)
        {
            if (!r.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
            var text = v.ValueKind == JsonValueKind.String ? v.GetString() : v.GetRawText();
            if (v.ValueKind != JsonValueKind.String || !IpAddr.TryParse(text, out var a) || a.IsV6 != subnet.IsV6)
            {
                found.Add(($"{path}.{name}", $"{text} is not an {family} address (the subnet is {s.GetString()})", false));
                ok = false;
                return null;
            }
            if ((a.Value & mask) != network.Value)
            {
                found.Add(($"{path}.{name}", $"{text} is outside the subnet {network}/{prefix}", false));
                ok = false;
                return null;
            }
            return a;
        }
        var start = Field("rangeStart");
        var end = Field("rangeEnd");
        Field("gateway");
        if (start is { } st && end is { } en && st > en)
        {
            found.Add(($"{path}.rangeStart", $"{st} is after rangeEnd {en}", false));
            ok = false;
        }
        if (!ok || prefix > subnet.Bits - 2) return null;
        return new OwnRange(path, network, prefix, start ?? network.Add(1), end ?? (subnet.IsV6 ? last : last.Sub(1)));
    }

    private static string? WhyNotWritable(string dir)
    {
        var probe = dir;
        while (!Directory.Exists(probe))
        {
            if (File.Exists(probe)) return $"{probe} is a file";
            probe = Path.GetDirectoryName(probe);
            if (probe is null) return "no existing parent";
        }
        var test = Path.Combine(probe, $".podbridge-validate-{Environment.ProcessId}");
        try
        {
            File.WriteAllBytes(test, []);
            File.Delete(test);
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return $"permission denied creating a file in {probe}";
        }
        catch (IOException)
        {
            return $"a file cannot be created in {probe}";
        }
    }

    [GeneratedRegex(@" at line \d+, column \d+$")]
    private static partial Regex LineColumn();

    [GeneratedRegex(@"^network config: (\S+) has the wrong type")]
    private static partial Regex WrongType();

    [GeneratedRegex(@"^([A-Za-z][\w\[\]./-]*): (.*)$", RegexOptions.Singleline)]
    private static partial Regex PathPrefix();

    /// <summary>ADD's messages start with the config path ("ipam.ranges[0][1].subnet: ..."); split it off.</summary>
    private static (string Path, string Message) SplitPath(string message, string? details)
    {
        if (WrongType().Match(message) is { Success: true } w)
            // The details' line and column count in the plugin's stdin, not in the file: the finding carries the file's.
            return (w.Groups[1].Value, $"has the wrong type{(details is null ? "" : ": " + LineColumn().Replace(details, ""))}");
        if (PathPrefix().Match(message) is { Success: true } p && !p.Groups[1].Value.Contains('/'))
            return (p.Groups[1].Value.Replace("network config", ""), p.Groups[2].Value);
        if (message.StartsWith("network config: ", StringComparison.Ordinal))
            message = message["network config: ".Length..];
        var space = message.IndexOf(' ');
        if (space > 0 && message[..space] is "name" or "cniVersion" or "bridge" or "mtu")
            return (message[..space].TrimEnd(':'), message[(space + 1)..]);
        return ("", message);
    }

    /// <summary>Every IP address on this node's links (the netns the command runs in), by link name.</summary>
    public static IReadOnlyList<(string Link, IPAddress Address)> NodeAddresses()
    {
        try
        {
            using var rt = RtNetlinkSocket.Open();
            var names = rt.ListLinks().ToDictionary(l => l.Index, l => l.Name);
            return rt.ListAddresses()
                .Select(a => (names.TryGetValue(a.Index, out var n) ? n : $"ifindex {a.Index}", a.Address))
                .ToList();
        }
        catch (NetlinkException)
        {
            return [];
        }
    }
}
