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

        var back = new int[words, tags];
        var next = new float[tags];
        for (int w = 1; w < words; w++)
        {
            for (int to = 0; to < tags; to++)
            {
                int best = 0;
                float bestScore = score[0] + crf.Transitions[0][to];
                for (int from = 1; from < tags; from++)
                {
                    float total = score[from] + crf.Transitions[from][to];
                    if (total > bestScore)
                    {
                        best = from;
                        bestScore = total;
                    }
                }

                back[w, to] = best;
                next[to] = bestScore + emissions[w][to];
            }

            (score, next) = (next, score);
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
            path[w - 1] = back[w, path[w]];
        }

        return path;
    }
}
