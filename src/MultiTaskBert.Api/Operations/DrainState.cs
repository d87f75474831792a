namespace MultiTaskBert.Api.Operations;

/// <summary>Whether the service is leaving (stop signal received): readiness turns false first.</summary>
internal sealed class DrainState
{
    private int _draining;

    public bool IsDraining => Volatile.Read(ref _draining) == 1;

    public void Begin() => Interlocked.Exchange(ref _draining, 1);
}
