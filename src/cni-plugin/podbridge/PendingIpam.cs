using System.Runtime.ExceptionServices;
using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// The IPAM call of a verb on a thread of its own while the main thread works on the links: ADD's allocation (the
/// links need its addresses only when the pod's interface is configured), CHECK's check (while the kernel is read),
/// DEL's release (while the kernel deletes the downed link). The IPAM's time (a lease commit, or the warm server's
/// round trip) and the kernel's overlap instead of adding up. The main thread never enters another namespace
/// (sockets carry it), so the thread, and a delegated IPAM plugin it execs, runs in the host's.
/// </summary>
internal sealed class PendingIpam
{
    private readonly Thread _thread;
    private CniResult? _result;
    private Exception? _error;

    private PendingIpam(Func<CniResult> call)
    {
        _thread = new Thread(() =>
        {
            try { _result = call(); }
            catch (Exception e) { _error = e; }
        }) { IsBackground = true, Name = "ipam" };
    }

    public static PendingIpam Start(Func<CniResult> call)
    {
        var pending = new PendingIpam(call);
        pending._thread.Start();
        return pending;
    }

    /// <summary>Waits for the call; true when it returned without an exception.</summary>
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
