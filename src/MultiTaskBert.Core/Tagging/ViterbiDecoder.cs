using System.Numerics;

namespace MultiTaskBert.Core.Tagging;

/// <summary>
/// Best tag path under a linear-chain CRF. Arithmetic is float32 in the same order as the
/// toolkit's numpy decoder, and ties go to the lowest tag index, so both pick the same path.
/// </summary>
public static class ViterbiDecoder
{
    /// <param name="emissions">[words][tags] first-piece logits of the words that have one.</param>
    /// <param name="crf">Validated matrices, as wide as the emissions.</param>
    public static int[] Decode(IReadOnlyList<float[]> emissions, CrfParameters crf)
    {
        int words = emissions.Count;
        if (words == 0)
        {
            return [];
        }

        int tags = crf.Start.Length;
        var score = new float[tags];
        for (int t = 0; t < tags; t++)
        {
            score[t] = crf.Start[t] + emissions[0][t];
        }

        var back = new int[words * tags];
        var best = new float[tags];
        for (int w = 1; w < words; w++)
        {
            Span<int> from = back.AsSpan(w * tags, tags);
            BestPredecessors(score, crf.Transitions, best, from);
            for (int to = 0; to < tags; to++)
            {
                score[to] = best[to] + emissions[w][to];
            }
        }

        int last = 0;
        float lastScore = score[0] + crf.End[0];
        for (int t = 1; t < tags; t++)
        {
            float total = score[t] + crf.End[t];
            if (total > lastScore)
            {
                last = t;
                lastScore = total;
            }
        }

        var path = new int[words];
        path[words - 1] = last;
        for (int w = words - 1; w > 0; w--)
        {
            path[w - 1] = back[(w * tags) + path[w]];
        }

        return path;
    }

    /// <summary>
    /// For every tag, the best score[from] + transitions[from][to] and its lowest such <c>from</c>.
    /// Predecessors are scanned in ascending order and a later one wins only when strictly better,
    /// so ties keep the lowest index; the scan runs over the contiguous rows of the transition matrix,
    /// a SIMD vector of <c>to</c> tags at a time (127 tags × 127 predecessors per word for ATIS).
    /// </summary>
    private static void BestPredecessors(ReadOnlySpan<float> score, float[][] transitions, Span<float> best, Span<int> bestFrom)
    {
        int tags = best.Length;
        ReadOnlySpan<float> first = transitions[0];
        for (int to = 0; to < tags; to++)
        {
            best[to] = score[0] + first[to];
            bestFrom[to] = 0;
        }

        int vectorEnd = Vector.IsHardwareAccelerated ? tags - (tags % Vector<float>.Count) : 0;
        for (int from = 1; from < tags; from++)
        {
            ReadOnlySpan<float> row = transitions[from];
            float previous = score[from];
            var previousVector = new Vector<float>(previous);
            var fromVector = new Vector<int>(from);
            for (int to = 0; to < vectorEnd; to += Vector<float>.Count)
            {
                Vector<float> candidate = previousVector + new Vector<float>(row.Slice(to));
                var current = new Vector<float>(best.Slice(to));
                Vector<int> better = Vector.GreaterThan(candidate, current);
                Vector.ConditionalSelect(better, candidate, current).CopyTo(best.Slice(to));
                Vector.ConditionalSelect(better, fromVector, new Vector<int>(bestFrom.Slice(to))).CopyTo(bestFrom.Slice(to));
            }

            for (int to = vectorEnd; to < tags; to++)
            {
                float candidate = previous + row[to];
                if (candidate > best[to])
                {
                    best[to] = candidate;
                    bestFrom[to] = from;
                }
            }
        }
    }
}
