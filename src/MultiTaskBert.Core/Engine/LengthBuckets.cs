namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Splits the rows of one trunk pass into buckets of similar length, so that short rows are not
/// padded to the longest one. A bucket costs one more trunk pass and one more run of every head,
/// worth <c>overheadTokens</c> padded tokens of compute; the split minimises
/// <c>Σ (overheadTokens + rows × longest row)</c> over buckets. The optimum is made of contiguous
/// runs of the rows sorted by length, found by dynamic programming (O(n²) for n rows).
/// No bucket of two or more rows exceeds <c>maxBucketTokens</c> padded tokens: the memory one
/// run takes grows with its padded size, and ONNX Runtime's arena keeps its high-water mark.
/// </summary>
internal static class LengthBuckets
{
    /// <summary>Row indices per bucket, shortest bucket first; every row appears exactly once.</summary>
    public static IReadOnlyList<int[]> Split(IReadOnlyList<int> lengths, int overheadTokens, int maxBucketTokens = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(lengths);
        ArgumentOutOfRangeException.ThrowIfNegative(overheadTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBucketTokens);
        int n = lengths.Count;
        if (n <= 1)
        {
            return n == 0 ? [] : [[0]];
        }

        int[] order = [.. Enumerable.Range(0, n).OrderBy(i => lengths[i])];
        // cost[i]: least cost of the i shortest rows; start[i]: where their last bucket begins.
        var cost = new long[n + 1];
        var start = new int[n + 1];
        for (int i = 1; i <= n; i++)
        {
            long longest = lengths[order[i - 1]];
            cost[i] = long.MaxValue;
            // Buckets ending at row i, longest first; a single row is always allowed.
            for (int j = i - 1; j >= 0 && (j == i - 1 || (i - j) * longest <= maxBucketTokens); j--)
            {
                long candidate = cost[j] + overheadTokens + ((i - j) * longest);
                if (candidate <= cost[i])
                {
                    cost[i] = candidate;
                    start[i] = j;
                }
            }
        }

        var buckets = new List<int[]>();
        for (int end = n; end > 0; end = start[end])
        {
            buckets.Add(order[start[end]..end]);
        }

        buckets.Reverse();
        return buckets;
    }
}
