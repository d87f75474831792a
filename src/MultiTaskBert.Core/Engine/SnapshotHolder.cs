namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Holds the snapshot in service: every inference leases it, the registry swaps it whole. The
/// engine, the micro-batcher and the registry share one holder, so they always agree on what is served.
/// </summary>
/// <remarks>
/// A swapped-out snapshot is retired (<see cref="BundleSnapshot.Dispose"/>), not disposed at once:
/// requests that leased it finish on it, and its sessions go with its last lease.
/// </remarks>
public sealed class SnapshotHolder : IDisposable
{
    private BundleSnapshot? _current;

    /// <summary>The snapshot in service, or null before the first load finished (including warm-up).</summary>
    public BundleSnapshot? Current => Volatile.Read(ref _current);

    /// <summary>
    /// Leases the snapshot in service: it (and its sessions) stays alive until released, even if a
    /// swap replaces it meanwhile. A snapshot that drained between the read and the lease has
    /// already been replaced, so the loop reads the new one.
    /// </summary>
    /// <exception cref="EngineNotReadyException">No snapshot is in service.</exception>
    internal BundleSnapshot Lease()
    {
        while (true)
        {
            BundleSnapshot bundle = Current ?? throw new EngineNotReadyException();
            if (bundle.TryAcquire())
            {
                return bundle;
            }
        }
    }

    /// <summary>
    /// Puts <paramref name="next"/> in service in place of <paramref name="expected"/> (null: the
    /// first load) and retires <paramref name="expected"/>. When something else changed the holder
    /// meanwhile, <paramref name="next"/> is disposed and nothing changes.
    /// </summary>
    internal void Replace(BundleSnapshot? expected, BundleSnapshot next)
    {
        ArgumentNullException.ThrowIfNull(next);
        BundleSnapshot? found = Interlocked.CompareExchange(ref _current, next, expected);
        if (!ReferenceEquals(found, expected))
        {
            next.Dispose();
            throw new InvalidOperationException(expected is null
                ? "A bundle is already loaded."
                : "The bundle in service changed during an admin change.");
        }

        expected?.Dispose();
    }

    /// <summary>Takes the snapshot out of service (retired: in-flight requests still finish on it).</summary>
    public void Dispose() => Interlocked.Exchange(ref _current, null)?.Dispose();
}
