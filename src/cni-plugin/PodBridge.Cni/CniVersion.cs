namespace PodBridge.Cni;

/// <summary>The CNI spec versions podbridge speaks, and comparisons between them.</summary>
public static class CniVersion
{
    public const string Latest = "1.1.0";

    /// <summary>Every version accepted on ADD, oldest first (reported by VERSION).</summary>
    public static readonly string[] Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static bool IsSupported(string version) => Array.IndexOf(Supported, version) >= 0;

    /// <summary>Compares two dotted versions numerically ("0.4.0" &lt; "1.0.0"); unparsable parts count as 0.</summary>
    public static int Compare(string a, string b)
    {
        var pa = a.Split('.');
        var pb = b.Split('.');
        for (var i = 0; i < Math.Max(pa.Length, pb.Length); i++)
        {
            var x = i < pa.Length && int.TryParse(pa[i], out var xv) ? xv : 0;
            var y = i < pb.Length && int.TryParse(pb[i], out var yv) ? yv : 0;
            if (x != y) return x.CompareTo(y);
        }
        return 0;
    }

    public static bool AtLeast(string version, string minimum) => Compare(version, minimum) >= 0;

    /// <summary>Results below 1.0.0 carry ips[].version and an always-present "dns" object.</summary>
    public static bool IsPre100(string version) => Compare(version, "1.0.0") < 0;
}
