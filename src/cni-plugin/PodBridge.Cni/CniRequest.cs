namespace PodBridge.Cni;

public enum CniVerb { Add, Del, Check, Version, Gc, Status }

public static class CniVerbNames
{
    /// <summary>The verb as CNI_COMMAND spells it, without Enum.ToString (reflection-backed under AOT, ~0.15 ms).</summary>
    public static string Name(this CniVerb verb) => verb switch
    {
        CniVerb.Add => "ADD",
        CniVerb.Del => "DEL",
        CniVerb.Check => "CHECK",
        CniVerb.Version => "VERSION",
        CniVerb.Gc => "GC",
        CniVerb.Status => "STATUS",
        _ => "UNKNOWN",
    };
}

/// <summary>
/// One plugin invocation, parsed from the CNI_* environment and stdin.
/// Fields a verb does not need are empty strings (libcni exports all six variables, "" for unused ones).
/// </summary>
public sealed record CniRequest(
    CniVerb Verb,
    string ContainerId,
    string NetNs,
    string IfName,
    CniArgs Args,
    IReadOnlyList<string> Path,
    byte[] StdinConfig)
{
    /// <summary>The variables as a runtime set them, for passing on to a delegated plugin.</summary>
    public required IReadOnlyDictionary<string, string> Environment { get; init; }

    public bool HasNetNs => NetNs.Length > 0;
}

/// <summary>Which CNI_* variables each verb requires (CNI.md §1.2); the table is the whole rule.</summary>
public static class CniEnvironment
{
    public const string Command = "CNI_COMMAND";
    public const string ContainerIdVar = "CNI_CONTAINERID";
    public const string NetNsVar = "CNI_NETNS";
    public const string IfNameVar = "CNI_IFNAME";
    public const string ArgsVar = "CNI_ARGS";
    public const string PathVar = "CNI_PATH";

    [Flags]
    private enum Need { None = 0, ContainerId = 1, NetNs = 2, IfName = 4 }

    private static readonly Dictionary<string, (CniVerb Verb, Need Need)> Table = new(StringComparer.Ordinal)
    {
        ["ADD"] = (CniVerb.Add, Need.ContainerId | Need.NetNs | Need.IfName),
        ["CHECK"] = (CniVerb.Check, Need.ContainerId | Need.NetNs | Need.IfName),
        ["DEL"] = (CniVerb.Del, Need.ContainerId | Need.IfName),
        ["VERSION"] = (CniVerb.Version, Need.None),
        ["GC"] = (CniVerb.Gc, Need.None),
        ["STATUS"] = (CniVerb.Status, Need.None),
    };

    /// <summary>Parses the invocation. Throws <see cref="CniException"/> code 4 naming the offending variable.</summary>
    public static CniRequest Parse(Func<string, string?> getenv, Func<byte[]> readStdin)
    {
        var command = getenv(Command) ?? "";
        if (command.Length == 0)
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"{Command} is not set");
        if (!Table.TryGetValue(command, out var entry))
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables,
                $"{Command}={command} is not a CNI command (expected one of ADD, DEL, CHECK, GC, STATUS, VERSION)");

        var need = entry.Need;
        var env = new Dictionary<string, string>(StringComparer.Ordinal);
        string Get(string name, bool required)
        {
            var value = getenv(name) ?? "";
            if (value.Length > 0) env[name] = value;
            if (required && value.Length == 0)
                throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"{name} is required for {command} but is not set");
            return value;
        }

        Get(Command, true);
        var containerId = Get(ContainerIdVar, need.HasFlag(Need.ContainerId));
        var netns = Get(NetNsVar, need.HasFlag(Need.NetNs));
        var ifName = Get(IfNameVar, need.HasFlag(Need.IfName));
        var rawArgs = Get(ArgsVar, false);
        var path = Get(PathVar, false);

        // VERSION ignores everything else (libcni sends CNI_NETNS=dummy etc.): validate only what the verb uses.
        if (need.HasFlag(Need.ContainerId)) ValidateContainerId(containerId);
        if (need.HasFlag(Need.IfName)) ValidateIfName(ifName);

        var args = entry.Verb == CniVerb.Version ? CniArgs.Empty : CniArgs.Parse(rawArgs);
        var stdin = entry.Verb == CniVerb.Version ? TryRead(readStdin) : Read(readStdin);
        var pathList = path.Split(':', StringSplitOptions.RemoveEmptyEntries);
        return new CniRequest(entry.Verb, containerId, netns, ifName, args, pathList, stdin) { Environment = env };
    }

    private static byte[] Read(Func<byte[]> readStdin)
    {
        try { return readStdin(); }
        catch (IOException e)
        {
            throw new CniException(CniErrorCode.IoFailure, $"cannot read the network config from stdin: {e.Message}");
        }
    }

    private static byte[] TryRead(Func<byte[]> readStdin)
    {
        try { return readStdin(); } catch (IOException) { return []; }
    }

    /// <summary>CNI_CONTAINERID: ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$</summary>
    public static void ValidateContainerId(string id)
    {
        if (!IsValidIdentifier(id))
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables,
                $"{ContainerIdVar}={id} is invalid: it must start with a letter or digit and contain only letters, digits, '_', '.' and '-'");
    }

    /// <summary>The spec's identifier rule, shared by CNI_CONTAINERID and the network name.</summary>
    public static bool IsValidIdentifier(string s)
    {
        if (s.Length == 0 || !char.IsAsciiLetterOrDigit(s[0])) return false;
        foreach (var c in s)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '-')) return false;
        return true;
    }

    /// <summary>CNI_IFNAME: what the kernel accepts as a link name (≤ 15 bytes, not . or .., no '/', ':' or whitespace).</summary>
    public static void ValidateIfName(string name)
    {
        string? why = null;
        if (name.Length == 0) why = "it is empty";
        else if (System.Text.Encoding.UTF8.GetByteCount(name) > 15) why = "it is longer than 15 bytes";
        else if (name is "." or "..") why = "'.' and '..' are not interface names";
        else
            foreach (var c in name)
                if (c == '/' || c == ':' || char.IsWhiteSpace(c) || char.IsControl(c)) { why = $"it contains '{c}'"; break; }
        if (why is not null)
            throw new CniException(CniErrorCode.InvalidEnvironmentVariables, $"{IfNameVar}={name} is invalid: {why}");
    }
}
