using System.Text;

namespace PodBridge.Cni.Tests;

internal static class Helpers
{
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>A getenv over literal pairs; a name that is not listed is unset.</summary>
    public static Func<string, string?> Env(params (string Name, string Value)[] vars)
    {
        var d = vars.ToDictionary(v => v.Name, v => v.Value);
        return name => d.GetValueOrDefault(name);
    }

    /// <summary>
    /// Parses "K=V|K=V" test notation into env pairs ('|' because CNI_ARGS itself uses ';').
    /// "K=" yields an empty (= unset) variable; a name that is not listed is absent.
    /// </summary>
    public static (string, string)[] Pairs(string spec) =>
        spec.Length == 0
            ? []
            : spec.Split('|').Select(p => { var i = p.IndexOf('='); return (p[..i], p[(i + 1)..]); }).ToArray();

    public static CniException Throws(Action a) => Assert.Throws<CniException>(a);
}
