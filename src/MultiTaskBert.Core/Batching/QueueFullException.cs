namespace MultiTaskBert.Core.Batching;

/// <summary>The micro-batching queue holds <see cref="Capacity"/> waiting requests already; the request was not queued.</summary>
public sealed class QueueFullException(int capacity)
    : Exception($"The request queue is full ({capacity} requests waiting); retry shortly.")
{
    public int Capacity { get; } = capacity;
}
