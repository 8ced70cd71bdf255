namespace PodBridge.IntegrationTests.Infrastructure;

/// <summary>
/// A named network namespace (`ip netns add pbt…`), i.e. /run/netns/NAME, deleted in Dispose.
/// Deleting it destroys every link inside, and with a veth the peer in the host namespace too.
/// </summary>
public sealed class TestNetNs : IDisposable
{
    private int _disposed;

    private TestNetNs(string name) => Name = name;

    public string Name { get; }

    /// <summary>The path a runtime passes as CNI_NETNS.</summary>
    public string Path => $"/run/netns/{Name}";

    public static async Task<TestNetNs> Create()
    {
        RunScope.EnsureInitialized();
        var ns = new TestNetNs(RunScope.NewName());
        (await Sh.Run("ip", "netns", "add", ns.Name)).EnsureOk();
        // lo up so a pod can reach its own addresses, as a runtime's loopback plugin would.
        (await Sh.Ip(ns.Name, "link", "set", "lo", "up")).EnsureOk();
        return ns;
    }

    public static async Task<TestNetNs[]> CreateMany(int count)
    {
        var list = new List<TestNetNs>(count);
        try
        {
            for (var i = 0; i < count; i++) list.Add(await Create());
            return [.. list];
        }
        catch
        {
            foreach (var ns in list) ns.Dispose();
            throw;
        }
    }

    /// <summary>Deletes the namespace now (tests for "netns gone before DEL"); Dispose then does nothing.</summary>
    public async Task Delete()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        (await Sh.Run("ip", "netns", "delete", Name)).EnsureOk();
    }

    /// <summary>Runs a command inside the namespace (`ip netns exec NAME ...`).</summary>
    public Task<ShResult> Exec(params string[] command) => Sh.Run("ip", ["netns", "exec", Name, .. command]);

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        // Synchronous: Dispose runs in finally blocks of failing tests too.
        Sh.Run("ip", "netns", "delete", Name).GetAwaiter().GetResult();
    }

    public override string ToString() => Name;
}
