using static PodBridge.Cni.Tests.Helpers;

namespace PodBridge.Cni.Tests;

public class IdentifierTests
{
    [Theory]
    [InlineData("a")]
    [InlineData("0")]
    [InlineData("Z9")]
    [InlineData("a_b.c-d")]
    [InlineData("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")]
    [InlineData("cnitool-77383ca0a0715733ca6f")]
    [InlineData("a..")]
    public void Valid_container_ids(string id)
    {
        Assert.True(CniEnvironment.IsValidIdentifier(id));
        CniEnvironment.ValidateContainerId(id);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-abc")]
    [InlineData("_abc")]
    [InlineData(".abc")]
    [InlineData("a b")]
    [InlineData("a/b")]
    [InlineData("a:b")]
    [InlineData("abc$")]
    [InlineData("abc\n")]
    [InlineData("äbc")]
    [InlineData("abç")]
    [InlineData("ab\u0660")] // ARABIC-INDIC DIGIT ZERO: a digit, but not an ASCII one
    public void Invalid_container_ids_are_code_4(string id)
    {
        Assert.False(CniEnvironment.IsValidIdentifier(id));
        var e = Throws(() => CniEnvironment.ValidateContainerId(id));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.StartsWith($"CNI_CONTAINERID={id} is invalid", e.Message);
    }

    [Theory]
    [InlineData("eth0")]
    [InlineData("a")]
    [InlineData("net1")]
    [InlineData("123456789012345")] // 15 bytes: the kernel's IFNAMSIZ - 1
    [InlineData("eth0.100")]
    [InlineData("veth-x_y@z")]
    [InlineData("...")]
    [InlineData(".a")]
    [InlineData("üüüüüüüa")] // 7 x 2 bytes + 1 = 15 bytes
    [InlineData("é")]
    [InlineData("😀😀😀a")] // 3 x 4 bytes + 1 = 13 bytes
    public void Valid_interface_names(string name) => CniEnvironment.ValidateIfName(name);

    [Theory]
    [InlineData("", "it is empty")]
    [InlineData("1234567890123456", "it is longer than 15 bytes")]
    [InlineData("üüüüüüüü", "it is longer than 15 bytes")] // 8 chars, 16 bytes
    [InlineData("😀😀😀😀", "it is longer than 15 bytes")] // 8 UTF-16 units, 16 bytes
    [InlineData("eth0üüüüüü", "it is longer than 15 bytes")] // 10 chars, 16 bytes
    [InlineData(".", "'.' and '..' are not interface names")]
    [InlineData("..", "'.' and '..' are not interface names")]
    [InlineData("eth/0", "it contains '/'")]
    [InlineData("/", "it contains '/'")]
    [InlineData("eth:0", "it contains ':'")]
    [InlineData("eth 0", "it contains ' '")]
    [InlineData(" eth0", "it contains ' '")]
    [InlineData("eth0\t", "it contains '\t'")]
    [InlineData("eth\n0", "it contains '\n'")]
    [InlineData("\u00a0eth", "it contains '\u00a0'")]
    [InlineData("eth\u2028", "it contains '\u2028'")]
    [InlineData("eth\u0000", "it contains '\u0000'")]
    public void Invalid_interface_names_are_code_4(string name, string why)
    {
        var e = Throws(() => CniEnvironment.ValidateIfName(name));
        Assert.Equal(CniErrorCode.InvalidEnvironmentVariables, e.Code);
        Assert.Equal($"CNI_IFNAME={name} is invalid: {why}", e.Message);
    }
}
