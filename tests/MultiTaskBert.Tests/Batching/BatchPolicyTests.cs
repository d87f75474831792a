using MultiTaskBert.Core.Batching;

namespace MultiTaskBert.Tests.Batching;

/// <summary>
/// The batching policy on its own: no engine, no threads, no clock. Timestamps are milliseconds
/// (the policy is built with 1000 ticks per second), so every expectation is exact.
/// </summary>
public sealed class BatchPolicyTests
{
    private const long TicksPerSecond = 1000;
    private static readonly object SnapshotA = new();
    private static readonly object SnapshotB = new();

    private static BatchPolicy Policy(int maxBatchSize = 32, int maxBatchTokens = 8192, double maxWaitMs = 10) =>
        new(new BatchingOptions { MaxBatchSize = maxBatchSize, MaxBatchTokens = maxBatchTokens, MaxWaitMs = maxWaitMs }, TicksPerSecond);

    /// <summary>A queued request of <paramref name="inputs"/> one-row inputs of <paramref name="length"/> tokens.</summary>
    private static Queued Request(int length, int inputs = 1, long enqueuedAt = 0, object? snapshot = null) =>
        new(snapshot ?? SnapshotA, new BatchLoad(inputs, inputs, length), enqueuedAt);

    [Fact]
    public void The_anchor_leads_and_the_others_join_closest_length_first_ties_in_arrival_order()
    {
        Queued[] waiting = [Request(10), Request(30), Request(12), Request(8), Request(11)];

        Assert.Equal([0, 4, 2, 3, 1], Policy().Select(waiting));
    }

    [Fact]
    public void Only_requests_of_the_anchors_snapshot_join()
    {
        Queued[] waiting = [Request(10), Request(10, snapshot: SnapshotB), Request(10)];

        Assert.Equal([0, 2], Policy().Select(waiting));
    }

    [Fact]
    public void A_batch_stops_at_the_maximum_batch_size()
    {
        Queued[] waiting = [Request(10, inputs: 2), Request(10, inputs: 2), Request(10), Request(10)];

        Assert.Equal([0, 1], Policy(maxBatchSize: 4).Select(waiting));
    }

    [Fact]
    public void A_request_that_would_break_the_token_budget_is_passed_over_for_a_smaller_one()
    {
        // Budget 30 padded tokens: the 3-input request is closest in length but the anchor with it
        // would be 4 rows × 10 = 40; the 12-token request fits (2 rows × 12 = 24).
        Queued[] waiting = [Request(10), Request(10, inputs: 3), Request(12)];

        Assert.Equal([0, 2], Policy(maxBatchTokens: 30).Select(waiting));
    }

    [Fact]
    public void A_request_larger_than_the_limits_runs_alone()
    {
        Queued[] waiting = [Request(500, inputs: 40), Request(5)];

        Assert.Equal([0], Policy(maxBatchSize: 32, maxBatchTokens: 100).Select(waiting));
    }

    [Fact]
    public void While_company_is_expected_the_anchor_waits_until_its_deadline()
    {
        BatchPolicy policy = Policy(maxWaitMs: 10);
        Queued[] waiting = [Request(10, enqueuedAt: 100), Request(10, enqueuedAt: 104)];

        Assert.Equal(10, policy.MaxWaitTicks);
        Assert.Equal(7, policy.WaitLeft(waiting, now: 103, averageArrivalGap: 0));
        Assert.Equal(0, policy.WaitLeft(waiting, now: 110, averageArrivalGap: 0));
        Assert.True(policy.WaitLeft(waiting, now: 125, averageArrivalGap: 0) < 0);
    }

    [Fact]
    public void When_requests_arrive_further_apart_than_the_wait_the_batch_closes_at_once()
    {
        BatchPolicy policy = Policy(maxWaitMs: 10);
        Queued[] waiting = [Request(10, enqueuedAt: 100)];

        Assert.Equal(10, policy.WaitLeft(waiting, now: 100, averageArrivalGap: 10));
        Assert.Equal(0, policy.WaitLeft(waiting, now: 100, averageArrivalGap: 11));
    }

    [Fact]
    public void A_batch_closes_at_once_when_the_anchors_snapshot_fills_it()
    {
        Assert.Equal(0, Policy(maxBatchSize: 2).WaitLeft([Request(10), Request(10)], now: 0, averageArrivalGap: 0));
        Assert.Equal(0, Policy(maxBatchTokens: 20).WaitLeft([Request(10), Request(10)], now: 0, averageArrivalGap: 0));
        Assert.Equal(0, Policy(maxBatchSize: 2).WaitLeft([Request(10, inputs: 3)], now: 0, averageArrivalGap: 0));
        Assert.Equal(10, Policy(maxBatchSize: 3, maxBatchTokens: 21).WaitLeft([Request(10), Request(10)], now: 0, averageArrivalGap: 0));
    }

    [Fact]
    public void A_request_of_another_snapshot_in_line_closes_the_batch_at_once()
    {
        Queued[] waiting = [Request(10), Request(10, snapshot: SnapshotB)];

        Assert.Equal(0, Policy().WaitLeft(waiting, now: 0, averageArrivalGap: 0));
    }

    [Fact]
    public void The_arrival_gap_average_moves_a_fifth_of_the_way_to_each_new_gap()
    {
        Assert.Equal(20, BatchPolicy.NextArrivalGap(0, 100));
        Assert.Equal(36, BatchPolicy.NextArrivalGap(20, 100));
        Assert.Equal(16, BatchPolicy.NextArrivalGap(20, 0));
    }

    [Fact]
    public void The_maximum_wait_is_converted_at_the_given_frequency()
    {
        var options = new BatchingOptions { MaxWaitMs = 2.5 };

        Assert.Equal(25_000, new BatchPolicy(options, ticksPerSecond: 10_000_000).MaxWaitTicks);
        Assert.Equal(0, new BatchPolicy(new BatchingOptions { MaxWaitMs = 0 }, TicksPerSecond).MaxWaitTicks);
    }

    [Fact]
    public void Fits_allows_both_limits_exactly()
    {
        BatchPolicy policy = Policy(maxBatchSize: 4, maxBatchTokens: 40);

        Assert.True(policy.Fits(new BatchLoad(4, 4, 10)));
        Assert.False(policy.Fits(new BatchLoad(5, 4, 8)));
        Assert.False(policy.Fits(new BatchLoad(2, 4, 11)));
    }

    [Fact]
    public void Loads_add_up_like_a_padded_batch()
    {
        BatchLoad both = new BatchLoad(1, 2, 7) + new BatchLoad(3, 3, 12);

        Assert.Equal(new BatchLoad(4, 5, 12), both);
        Assert.Equal(60, both.PaddedTokens);
        Assert.Equal(0, default(BatchLoad).PaddedTokens);
        Assert.Equal(4_000_000_000_000L, new BatchLoad(1, 2_000_000, 2_000_000).PaddedTokens);
    }

    private sealed record Queued(object Snapshot, BatchLoad Load, long EnqueuedAt) : IBatchCandidate<object>;
}
