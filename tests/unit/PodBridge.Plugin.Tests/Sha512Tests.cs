using System.Security.Cryptography;
using System.Text;
using PodBridge.Plugin;
using Xunit;

namespace PodBridge.Plugin.Tests;

public class Sha512Tests
{
    [Fact]
    public void Matches_the_BCL_on_every_length_around_the_block_and_padding_boundaries()
    {
        var random = new Random(512);
        for (var length = 0; length <= 400; length++)
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(SHA512.HashData(data), Sha512.Hash(data));
        }
    }

    [Fact]
    public void Known_answer_abc() =>
        // FIPS 180-4 example "abc".
        Assert.Equal(
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            Convert.ToHexStringLower(Sha512.Hash("abc"u8)));

    [Fact]
    public void Chain_names_are_what_earlier_releases_computed()
    {
        // The name must not change across releases: DEL and GC find older chains by it.
        var who = new Masquerade.Attachment("mynet", "0123456789abcdef", "eth0");
        var expected = "PB-" + Convert.ToHexStringLower(SHA512.HashData(Encoding.UTF8.GetBytes("mynet\n0123456789abcdef/eth0")))[..24];
        Assert.Equal(expected, MasqueradeIptables.ChainName(who));
    }
}
