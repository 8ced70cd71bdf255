using PodBridge.Netlink;

namespace PodBridge.Netlink.Tests;

public class MacTests
{
    [Theory]
    [InlineData("02:42:ac:11:00:02")]
    [InlineData("02:42:AC:11:00:02")]
    [InlineData("02-42-ac-11-00-02")]
    public void Parse_AcceptsColonOrDashInAnyCase(string text)
    {
        Assert.Equal([0x02, 0x42, 0xac, 0x11, 0x00, 0x02], Mac.Parse(text));
    }

    [Theory]
    [InlineData("")]
    [InlineData("02:42:ac:11:00")]
    [InlineData("02:42:ac:11:00:02:03")]
    [InlineData("02:42-ac:11:00:02")]
    [InlineData("02:42:ac:11:00:0g")]
    [InlineData("0242.ac11.0002")]
    [InlineData(" 2:42:ac:11:00:02")]
    [InlineData("+2:42:ac:11:00:02")]
    public void Parse_RejectsAnythingElse(string text)
    {
        var error = Assert.Throws<FormatException>(() => Mac.Parse(text));
        Assert.Contains("not a MAC address", error.Message);
    }

    [Fact]
    public void Format_IsLowercaseColonSeparated()
    {
        Assert.Equal("0a:fe:00:11:22:ff", Mac.Format([0x0a, 0xfe, 0x00, 0x11, 0x22, 0xff]));
        Assert.Equal("", Mac.Format([]));
        Assert.Equal("de:ad", Mac.Format([0xde, 0xad]));
    }

    [Fact]
    public void LinkInfo_MacString_FormatsTheBytes()
    {
        var link = new LinkInfo(1, "eth0", "veth", [0x02, 0, 0, 0, 0, 0x0b], 1500, true, false, null, null, null);
        Assert.Equal("02:00:00:00:00:0b", link.MacString);
    }
}

public class ErrnoTests
{
    [Theory]
    [InlineData(Errno.ENOENT, "ENOENT")]
    [InlineData(Errno.EEXIST, "EEXIST")]
    [InlineData(Errno.ENODEV, "ENODEV")]
    [InlineData(Errno.EINVAL, "EINVAL")]
    [InlineData(Errno.EOPNOTSUPP, "EOPNOTSUPP")]
    [InlineData(4095, "errno")]
    public void Name(int errno, string name) => Assert.Equal(name, Errno.Name(errno));

    [Fact]
    public void Values_MatchLinux()
    {
        Assert.Equal([2, 17, 19, 22, 90, 105], [Errno.ENOENT, Errno.EEXIST, Errno.ENODEV, Errno.EINVAL, Errno.EMSGSIZE, Errno.ENOBUFS]);
    }

    [Fact]
    public void Exception_Format()
    {
        Assert.Equal("op: ENODEV (19): why", new NetlinkException("op", Errno.ENODEV, "why").Message);
        Assert.Equal("op: ENODEV (19)", new NetlinkException("op", Errno.ENODEV).Message);
    }
}

public class SysctlTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("pbt-sysctl-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Read_TrimsAndReturnsNullWhenMissing()
    {
        var path = Path.Combine(_dir, "value");
        File.WriteAllText(path, "32768\t60999\n");
        Assert.Equal("32768\t60999", Sysctl.Read(path));
        Assert.Null(Sysctl.Read(Path.Combine(_dir, "missing")));
        Assert.Null(Sysctl.Read(Path.Combine(_dir, "no-dir", "missing")));
    }

    [Fact]
    public void Read_HandlesValuesLongerThanOneChunk()
    {
        var path = Path.Combine(_dir, "long");
        var value = string.Join(' ', Enumerable.Range(0, 200));
        File.WriteAllText(path, value + "\n");
        Assert.Equal(value, Sysctl.Read(path));
    }

    [Fact]
    public void EnsureValue_WritesOnlyWhenDifferent()
    {
        var path = Path.Combine(_dir, "ip_forward");
        File.WriteAllText(path, "1\n");
        var stamp = new DateTime(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, stamp);

        Assert.True(Sysctl.EnsureValue(path, "1"));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(path)); // untouched

        File.WriteAllText(path, "0\n");
        Assert.True(Sysctl.EnsureValue(path, "1"));
        Assert.Equal("1", Sysctl.Read(path));
    }

    [Fact]
    public void EnsureValue_MissingFile_IsFalseAndCreatesNothing()
    {
        var path = Path.Combine(_dir, "bridge-nf-call-iptables");
        Assert.False(Sysctl.EnsureValue(path, "1"));
        Assert.False(File.Exists(path));
    }
}
