using PodBridge.Cni;

namespace PodBridge.Plugin;

/// <summary>
/// ADD's compensation log: every resource is registered right after it is created; unless
/// <see cref="Commit"/> is reached, Dispose undoes them newest first, so a failed ADD leaves nothing behind.
/// </summary>
public sealed class Rollback : IDisposable
{
    private readonly Stack<(string What, Action Undo)> _steps = new();
    private bool _committed;

    public void Push(string what, Action undo) => _steps.Push((what, undo));

    public void Commit() => _committed = true;

    public void Dispose()
    {
        if (_committed) return;
        while (_steps.TryPop(out var step))
        {
            try
            {
                step.Undo();
                Log.Info($"rolled back: {step.What}");
            }
            catch (Exception e)
            {
                // Keep undoing the rest: one stuck resource must not leak the others.
                Log.Error($"rollback of {step.What} failed: {e.Message}");
            }
        }
    }
}
