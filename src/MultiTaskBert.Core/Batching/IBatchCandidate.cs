namespace MultiTaskBert.Core.Batching;

/// <summary>What <see cref="BatchPolicy"/> needs to know of a queued request.</summary>
/// <typeparam name="TSnapshot">What a request is planned against (the engine's snapshot); the policy only compares them.</typeparam>
internal interface IBatchCandidate<out TSnapshot>
    where TSnapshot : class
{
    /// <summary>The snapshot the request was planned against; only requests of the same snapshot share a batch.</summary>
    TSnapshot Snapshot { get; }

    /// <summary>What the request adds to a batch.</summary>
    BatchLoad Load { get; }

    /// <summary>When it was queued (a timestamp in the policy's units).</summary>
    long EnqueuedAt { get; }
}
