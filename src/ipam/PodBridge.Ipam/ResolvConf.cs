using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// resolv.conf(5) subset that CNI results carry: nameserver (repeatable), domain (last wins),
/// search (last line wins, as in the resolver), options (accumulate). '#' and ';' start comments.
/// </summary>
public static class ResolvConf
{
    public static CniDns Read(string path, string field)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CniException(CniErrorCode.InvalidNetworkConfig, $"{field}: cannot read {path}: {e.Message}");
        }
        return Parse(text);
    }

    public static CniDns Parse(string text)
    {
        var nameservers = new List<string>();
        var search = new List<string>();
        var options = new List<string>();
        string? domain = null;
        foreach (var rawLine in text.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0 || line[0] is '#' or ';') continue;
            var fields = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2) continue;
            switch (fields[0])
            {
                case "nameserver": nameservers.Add(fields[1]); break;
                case "domain": domain = fields[1]; break;
                case "search": search = [.. fields[1..]]; break;
                case "options": options.AddRange(fields[1..]); break;
            }
        }
        return new CniDns { Nameservers = nameservers, Domain = domain, Search = search, Options = options };
    }
}
