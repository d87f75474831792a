namespace MultiTaskBert.Core.Batching;

/// <summary>
/// Decides when a batch closes and which queued requests join it; <see cref="MicroBatcher"/> only
/// waits, runs and delivers. Pure: no threads, no clock. Times are timestamps passed in, in ticks
/// of the frequency given at construction (<see cref="System.Diagnostics.Stopwatch.Frequency"/> in service).
/// <para>
/// The oldest waiting request anchors the batch. The batch closes when the requests of the
/// anchor's snapshot fill it (<see cref="BatchingOptions.MaxBatchSize"/> inputs or
/// <see cref="BatchingOptions.MaxBatchTokens"/> padded tokens), when a request of another snapshot
/// is in line, when the anchor has waited <see cref="BatchingOptions.MaxWaitMs"/>, or at once when
/// requests arrive further apart than that on average: waiting could not gather company, so light
/// load pays no batching latency. Others join closest length first (least padding) while the
/// batch stays within both limits; a single request larger than the limits still runs, alone.
/// </para>
/// </summary>
internal sealed class BatchPolicy
{
    /// <summary>Weight of the newest gap in the moving average of arrival gaps (1/5).</summary>
    private const int GapSmoothing = 5;

    private readonly int _maxInputs;
    private readonly int _maxPaddedTokens;

    public BatchPolicy(BatchingOptions options, long ticksPerSecond)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(ticksPerSecond);
        _maxInputs = options.MaxBatchSize;
        _maxPaddedTokens = options.MaxBatchTokens;
        MaxWaitTicks = (long)(options.MaxWaitMs * ticksPerSecond / 1000.0);
    }

    /// <summary>How long the anchor may wait for company, in ticks.</summary>
    public long MaxWaitTicks { get; }

    /// <summary>
    /// The moving average of the time between arrivals after one more <paramref name="gap"/>
    /// (ticks). It starts at 0, "busy", so the first requests wait for company.
    /// </summary>
    public static long NextArrivalGap(long averageGap, long gap) => averageGap + ((gap - averageGap) / GapSmoothing);

    /// <summary>
    /// How much longer to wait for company before the batch anchored by <paramref name="waiting"/>[0]
    /// closes, in ticks; zero or less: close it now.
    /// </summary>
    /// <param name="waiting">Queued requests in arrival order (not empty).</param>
    /// <param name="now">The current timestamp.</param>
    /// <param name="averageArrivalGap">The moving average of the time between arrivals (<see cref="NextArrivalGap"/>).</param>
    public long WaitLeft(IReadOnlyList<IBatchCandidate<object>> waiting, long now, long averageArrivalGap)
    {
        if (averageArrivalGap > MaxWaitTicks || IsFull(waiting))
        {
            return 0;
        }

        return waiting[0].EnqueuedAt + MaxWaitTicks - now;
    }

    /// <summary>
    /// The members of the next batch, as indexes into <paramref name="waiting"/>, in the order they
    /// run: the anchor first, then the others of its snapshot, closest length first (ties in arrival
    /// order), each while the batch stays within both limits.
    /// </summary>
    /// <param name="waiting">Queued requests in arrival order (not empty).</param>
    public IReadOnlyList<int> Select(IReadOnlyList<IBatchCandidate<object>> waiting)
    {
        IBatchCandidate<object> anchor = waiting[0];
        var members = new List<int> { 0 };
        BatchLoad load = anchor.Load;
        IEnumerable<int> candidates = Enumerable.Range(1, waiting.Count - 1)
            .Where(i => ReferenceEquals(waiting[i].Snapshot, anchor.Snapshot))
            .OrderBy(i => Math.Abs(waiting[i].Load.LongestRow - anchor.Load.LongestRow));
        foreach (int candidate in candidates)
        {
            BatchLoad joined = load + waiting[candidate].Load;
            if (!Fits(joined))
            {
                continue; // A smaller request further on may still fit.
            }

            members.Add(candidate);
            load = joined;
            if (load.Inputs >= _maxInputs)
            {
                break; // No request fits any more.
            }
        }

        return members;
    }

    /// <summary>Whether a batch of this load stays within both limits.</summary>
    public bool Fits(BatchLoad load) => load.Inputs <= _maxInputs && load.PaddedTokens <= _maxPaddedTokens;

    /// <summary>
    /// Whether waiting cannot add to the batch: the requests of the anchor's snapshot, in arrival
    /// order, reach a limit already, or a request of another snapshot is in line (run what we have).
    /// </summary>
    private bool IsFull(IReadOnlyList<IBatchCandidate<object>> waiting)
    {
        object snapshot = waiting[0].Snapshot;
        var load = default(BatchLoad);
        foreach (IBatchCandidate<object> request in waiting)
        {
            if (!ReferenceEquals(request.Snapshot, snapshot))
            {
                return true;
            }

            load += request.Load;
            if (load.Inputs >= _maxInputs || load.PaddedTokens >= _maxPaddedTokens)
            {
                return true;
            }
        }

        return false;
    }
}
