using System.Runtime.ExceptionServices;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// ADD's IPAM call (and CHECK's check, DEL's release), on a thread of its own while the main thread works on the links: the allocation needs no link, and
/// the links need its addresses only when the pod's interface is configured. The IPAM's time (a lease commit, or the
/// warm server's round trip) and the kernel's link work overlap instead of adding up. Started before the main thread
/// enters any other namespace, so the thread (and a delegated IPAM plugin it execs) runs in the host's.
/// </summary>
internal sealed class PendingIpam
{
    private readonly Thread _thread;
    private CniResult? _result;
    private Exception? _error;

    private PendingIpam(Func<CniResult> add)
    {
        _thread = new Thread(() =>
        {
            try { _result = add(); }
            catch (Exception e) { _error = e; }
        }) { IsBackground = true, Name = "ipam" };
    }

    public static PendingIpam Start(Func<CniResult> add)
    {
        var pending = new PendingIpam(add);
        pending._thread.Start();
        return pending;
    }

    /// <summary>Waits for the call; true when it returned an allocation.</summary>
    public bool Succeeded
    {
        get
        {
            _thread.Join();
            return _error is null;
        }
    }

    /// <summary>Waits for the call; its result, or its exception rethrown as the IPAM threw it.</summary>
    public CniResult Result()
    {
        _thread.Join();
        if (_error is not null) ExceptionDispatchInfo.Capture(_error).Throw();
        return _result!;
    }
}
