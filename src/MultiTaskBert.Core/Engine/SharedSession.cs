namespace MultiTaskBert.Core.Engine;

/// <summary>
/// A reference-counted ONNX session wrapper (trunk or head runner) shared by every snapshot that
/// serves it: replacing one head builds a new snapshot that takes another reference on the trunk
/// and the other heads instead of reloading them. The wrapped runner is disposed when the last
/// snapshot holding it has been retired and drained.
/// </summary>
internal sealed class SharedSession<T>
    where T : class, IDisposable
{
    private int _references = 1;

    public SharedSession(T value) => Value = value;

    public T Value { get; }

    /// <summary>Whether the wrapped runner has been disposed (for tests).</summary>
    public bool IsDisposed => Volatile.Read(ref _references) == 0;

    /// <summary>Takes one more reference. Only called while the caller already holds one (the snapshot in service).</summary>
    public SharedSession<T> AddReference()
    {
        int before;
        do
        {
            before = Volatile.Read(ref _references);
            ObjectDisposedException.ThrowIf(before <= 0, this);
        }
        while (Interlocked.CompareExchange(ref _references, before + 1, before) != before);

        return this;
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _references) == 0)
        {
            Value.Dispose();
        }
    }
}
