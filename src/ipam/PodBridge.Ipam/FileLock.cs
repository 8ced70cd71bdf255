using System.Diagnostics;
using Microsoft.Win32.SafeHandles;
using PodBridge.Cni;

namespace PodBridge.Ipam;

/// <summary>
/// flock(LOCK_EX) on a lock file next to the database, held for a whole open-transaction-close cycle.
/// LiteDB's own multi-process modes lose writes on Linux; this lock is what serializes concurrent plugin
/// processes. The kernel drops it when the process dies, so a crashed plugin never leaves it stuck.
/// Waiting is bounded: LOCK_NB polled with short growing sleeps, then code 11.
/// </summary>
public sealed class FileLock : IDisposable
{
    private readonly SafeFileHandle _handle;

    private FileLock(SafeFileHandle handle) => _handle = handle;

    public static FileLock Acquire(string path, TimeSpan timeout)
    {
        SafeFileHandle handle;
        try
        {
            handle = Native.Open(path, Tmds.Linux.LibC.O_RDWR | Tmds.Linux.LibC.O_CREAT);
        }
        catch (IOException e)
        {
            throw new CniException(CniErrorCode.IoFailure, $"IPAM data dir is not writable: {e.Message}");
        }

        try
        {
            var started = Stopwatch.GetTimestamp();
            var sleepMs = 1;
            while (!Native.Flock(handle, Native.LOCK_EX | Native.LOCK_NB, path))
            {
                if (Stopwatch.GetElapsedTime(started) >= timeout)
                    throw new CniException(CniErrorCode.TryAgainLater,
                        $"IPAM lock {path} is still held by another process after {timeout.TotalSeconds:0.#}s; try again later");
                // Random jitter keeps a crowd of waiters from retrying in lockstep.
                Thread.Sleep(sleepMs + Random.Shared.Next(sleepMs + 1));
                sleepMs = Math.Min(sleepMs * 2, 16);
            }
            return new FileLock(handle);
        }
        catch (IOException e)
        {
            handle.Dispose();
            throw new CniException(CniErrorCode.IoFailure, $"cannot lock {path}: {e.Message}");
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A counter kept in the lock file, read and written only under the lock. Every in-process opener bumps it, so a
    /// warm server that holds the database open between requests knows someone else had the database since (and
    /// reopens it) instead of trusting its cache.
    /// </summary>
    public long Generation
    {
        get => Native.ReadLong(_handle);
        set => Native.WriteLong(_handle, value);
    }

    /// <summary>Closing the descriptor releases the flock.</summary>
    public void Dispose() => _handle.Dispose();
}
