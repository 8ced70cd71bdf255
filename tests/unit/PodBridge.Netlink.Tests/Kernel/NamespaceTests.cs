using PodBridge.Netlink;

namespace PodBridge.Netlink.Tests.Kernel;

public sealed class NamespaceTests : IDisposable
{
    private readonly TestNetns _ns = new();

    public void Dispose() => _ns.Dispose();

    [Fact]
    public void Open_MissingPath_IsEnoent()
    {
        var path = $"/run/netns/pbt-missing-{Guid.NewGuid():n}";
        var error = Assert.Throws<NetlinkException>(() => NetNsHandle.Open(path));
        Assert.Equal(Errno.ENOENT, error.Errno);
        Assert.Equal($"open netns {path}: ENOENT (2)", error.Message);
    }

    [Fact]
    public void Open_RegularFile_IsEinvalNotANetworkNamespace()
    {
        var path = Path.GetTempFileName();
        try
        {
            var error = Assert.Throws<NetlinkException>(() => NetNsHandle.Open(path));
            Assert.Equal(Errno.EINVAL, error.Errno);
            Assert.Contains("not a network namespace", error.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("/proc/self/ns/mnt")]   // on nsfs, but another namespace type
    [InlineData("/proc/self/ns/uts")]
    [InlineData("/tmp")]                // a directory
    [InlineData("/dev/null")]
    public void Open_OtherFiles_AreEinval(string path)
    {
        var error = Assert.Throws<NetlinkException>(() => NetNsHandle.Open(path));
        Assert.Equal(Errno.EINVAL, error.Errno);
        Assert.Contains("not a network namespace", error.Message);
    }

    [Fact]
    public void Identity_IsTheNsfsInode_AsStatReportsIt()
    {
        var (code, stdout, _) = Ip.Exec("stat", ["-L", "-c", "%d %i", _ns.Path]);
        Assert.Equal(0, code);
        var parts = stdout.Trim().Split(' ');
        Assert.Equal((ulong.Parse(parts[0]), ulong.Parse(parts[1])), _ns.Handle.Identity);
    }

    [Fact]
    public void IsSameAs_ComparesNamespacesNotPaths()
    {
        using var again = NetNsHandle.Open(_ns.Path);
        using var current = NetNsHandle.OpenCurrent();
        using var self = NetNsHandle.Open("/proc/self/ns/net");

        Assert.True(again.IsSameAs(_ns.Handle));
        Assert.True(current.IsSameAs(self));
        Assert.False(current.IsSameAs(_ns.Handle));
    }

    [Fact]
    public void RunInside_RunsInTheNamespace_AndLeavesTheCallerWhereItWas()
    {
        using var before = NetNsHandle.OpenCurrent();
        var callerThread = Environment.CurrentManagedThreadId;

        var (inside, thread) = _ns.Handle.RunInside(() =>
        {
            using var current = NetNsHandle.OpenCurrent();
            return (current.Identity, Environment.CurrentManagedThreadId);
        });

        using var after = NetNsHandle.OpenCurrent();
        Assert.Equal(_ns.Handle.Identity, inside);
        Assert.NotEqual(callerThread, thread);
        Assert.True(after.IsSameAs(before));
        Assert.False(after.IsSameAs(_ns.Handle));
    }

    [Fact]
    public void RunInside_PropagatesExceptions()
    {
        var error = Assert.Throws<InvalidOperationException>(() => _ns.Handle.RunInside<int>(() => throw new InvalidOperationException("boom")));
        Assert.Equal("boom", error.Message);
        Assert.Contains(nameof(RunInside_PropagatesExceptions), error.StackTrace);
    }

    [Fact]
    public void RunInside_OnADisposedHandle_Throws()
    {
        var handle = NetNsHandle.Open(_ns.Path);
        handle.Dispose();
        Assert.Throws<ObjectDisposedException>(() => handle.RunInside(() => 1));
    }

    [Fact]
    public void Sysctl_InsideTheNamespace_ChangesOnlyThatNamespace()
    {
        const string path = "/proc/sys/net/ipv4/conf/lo/forwarding";
        var hostBefore = Sysctl.Read(path);
        Assert.NotNull(hostBefore);
        // A value the host does not have, so that a write leaking to the host would show.
        var target = hostBefore == "1" ? "0" : "1";
        Assert.True(_ns.Handle.RunInside(() => Sysctl.EnsureValue(path, hostBefore)));

        Assert.True(_ns.Handle.RunInside(() => Sysctl.EnsureValue(path, target)));

        Assert.Equal(target, _ns.Handle.RunInside(() => Sysctl.Read(path)));
        var (code, stdout, _) = Ip.Exec("ip", ["netns", "exec", _ns.Name, "cat", path]);
        Assert.Equal((0, target), (code, stdout.Trim()));
        Assert.Equal(hostBefore, Sysctl.Read(path));
        Assert.False(_ns.Handle.RunInside(() => Sysctl.EnsureValue("/proc/sys/net/ipv4/pbt_missing", "1")));
    }
}
