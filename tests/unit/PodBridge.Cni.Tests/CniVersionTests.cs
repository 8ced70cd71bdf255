namespace PodBridge.Cni.Tests;

public class CniVersionTests
{
    [Theory]
    [InlineData("0.4.0", "1.0.0", -1)]
    [InlineData("1.0.0", "0.4.0", 1)]
    [InlineData("1.1.0", "1.1.0", 0)]
    [InlineData("0.3.1", "0.3.0", 1)]
    [InlineData("0.10.0", "0.9.0", 1)] // numeric, not lexical
    [InlineData("1.0", "1.0.0", 0)]
    public void Compare(string a, string b, int sign) => Assert.Equal(sign, Math.Sign(CniVersion.Compare(a, b)));

    [Theory]
    [InlineData("0.3.0", true)]
    [InlineData("0.3.1", true)]
    [InlineData("0.4.0", true)]
    [InlineData("1.0.0", false)]
    [InlineData("1.1.0", false)]
    public void IsPre100(string v, bool pre) => Assert.Equal(pre, CniVersion.IsPre100(v));

    [Fact]
    public void Supported_versions()
    {
        Assert.Equal(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"], CniVersion.Supported);
        Assert.Equal("1.1.0", CniVersion.Latest);
        Assert.True(CniVersion.IsSupported("0.3.0"));
        Assert.False(CniVersion.IsSupported("0.2.0"));
        Assert.False(CniVersion.IsSupported("1.1"));
        Assert.True(CniVersion.AtLeast("1.1.0", "0.4.0"));
        Assert.False(CniVersion.AtLeast("0.3.1", "0.4.0"));
    }

    [Fact]
    public void Error_codes_have_their_spec_and_libcni_values()
    {
        Assert.Equal(1, (int)CniErrorCode.IncompatibleVersion);
        Assert.Equal(4, (int)CniErrorCode.InvalidEnvironmentVariables);
        Assert.Equal(6, (int)CniErrorCode.DecodingFailure);
        Assert.Equal(7, (int)CniErrorCode.InvalidNetworkConfig);
        Assert.Equal(8, (int)CniErrorCode.InvalidNetNs);
        Assert.Equal(11, (int)CniErrorCode.TryAgainLater);
        Assert.Equal(50, (int)CniErrorCode.PluginNotAvailable);
        Assert.Equal(51, (int)CniErrorCode.PluginNotAvailableLimitedConnectivity);
        Assert.Equal(999, (int)CniErrorCode.Internal);
    }
}
