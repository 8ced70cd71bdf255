using System.Text;
using PodBridge.Cni;

namespace PodBridge.Plugin.Tests;

internal static class Helpers
{
    public static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    public static CniException Throws(Action a) => Assert.Throws<CniException>(a);
}
