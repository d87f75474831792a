using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Tests.Engine;

public sealed class LengthBucketsTests
{
    [Fact]
    public void A_long_outlier_gets_its_own_bucket()
    {
        int[] lengths = [.. Enumerable.Repeat(10, 31), 128];
        lengths[5] = 128; // the outlier sits anywhere in the batch
        lengths[31] = 10;

        IReadOnlyList<int[]> buckets = LengthBuckets.Split(lengths, overheadTokens: 64);

        Assert.Equal(2, buckets.Count);
        Assert.Equal([5], buckets[1]);
        Assert.Equal(31, buckets[0].Length);
    }

    [Fact]
    public void A_large_overhead_keeps_one_bucket_and_zero_splits_every_distinct_length()
    {
        int[] lengths = [7, 30, 7, 12, 30, 9];

        Assert.Single(LengthBuckets.Split(lengths, overheadTokens: 1_000_000));
        IReadOnlyList<int[]> perLength = LengthBuckets.Split(lengths, overheadTokens: 0);
        Assert.Equal([7, 9, 12, 30], perLength.Select(b => lengths[b[0]]));
        Assert.All(perLength, b => Assert.Single(b.Select(i => lengths[i]).Distinct()));
    }

    /// <summary>Random batches, without and with a pass limit; with one, no bucket of several rows exceeds it.</summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_split_is_optimal_within_the_pass_limit_and_covers_every_row_once(bool limited)
    {
        var random = new Random(7);
        for (int trial = 0; trial < 200; trial++)
        {
            int[] lengths = [.. Enumerable.Range(0, random.Next(1, 10)).Select(_ => random.Next(3, 129))];
            int overhead = random.Next(0, limited ? 2000 : 200);
            int maxBucketTokens = limited ? random.Next(100, 600) : int.MaxValue;

            IReadOnlyList<int[]> buckets = LengthBuckets.Split(lengths, overhead, maxBucketTokens);

            Assert.Equal(Enumerable.Range(0, lengths.Length), buckets.SelectMany(b => b).Order());
            Assert.All(buckets.Where(b => b.Length > 1), b => Assert.True((long)b.Length * b.Max(i => lengths[i]) <= maxBucketTokens));
            long cost = buckets.Sum(b => overhead + ((long)b.Length * b.Max(i => lengths[i])));
            Assert.Equal(BruteForceCost([.. lengths.Order()], overhead, maxBucketTokens), cost);
        }
    }

    [Fact]
    public void A_row_longer_than_the_pass_limit_still_runs_alone()
    {
        IReadOnlyList<int[]> buckets = LengthBuckets.Split([128, 10, 128], overheadTokens: 1_000_000, maxBucketTokens: 100);

        Assert.Equal(3, buckets.Count);
        Assert.All(buckets, b => Assert.Single(b));
    }

    [Fact]
    public void No_rows_give_no_buckets() => Assert.Empty(LengthBuckets.Split([], 64));

    /// <summary>Least cost over every way to cut the sorted lengths into contiguous buckets.</summary>
    private static long BruteForceCost(int[] sorted, int overhead, int maxBucketTokens = int.MaxValue)
    {
        long best = long.MaxValue;
        int cuts = sorted.Length - 1;
        for (int mask = 0; mask < 1 << cuts; mask++)
        {
            long cost = 0;
            int start = 0;
            for (int i = 0; i < sorted.Length; i++)
            {
                bool last = i == sorted.Length - 1 || (mask & (1 << i)) != 0;
                if (last)
                {
                    if (i > start && (long)(i - start + 1) * sorted[i] > maxBucketTokens)
                    {
                        cost = long.MaxValue / 2; // a bucket of several rows over the limit: not allowed
                    }

                    cost += overhead + ((long)(i - start + 1) * sorted[i]);
                    start = i + 1;
                }
            }

            best = Math.Min(best, cost);
        }

        return best;
    }
}
