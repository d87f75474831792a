using MultiTaskBert.Core.Tagging;

namespace MultiTaskBert.Tests.Tagging;

public sealed class ViterbiDecoderTests
{
    private static float Score(int[] path, float[][] emissions, CrfParameters crf)
    {
        float score = crf.Start[path[0]] + crf.End[path[^1]];
        for (int w = 0; w < path.Length; w++)
        {
            score += emissions[w][path[w]];
            if (w > 0)
            {
                score += crf.Transitions[path[w - 1]][path[w]];
            }
        }

        return score;
    }

    /// <summary>Every path of <paramref name="words"/> words over <paramref name="tags"/> tags, in lexicographic order.</summary>
    private static IEnumerable<int[]> AllPaths(int words, int tags)
    {
        int total = (int)Math.Pow(tags, words);
        for (int n = 0; n < total; n++)
        {
            var path = new int[words];
            for (int w = words - 1, rest = n; w >= 0; w--, rest /= tags)
            {
                path[w] = rest % tags;
            }

            yield return path;
        }
    }

    private static float[] Vector(Random random, int n) => [.. Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() * 4 - 2))];

    [Theory]
    [InlineData(1, 3)]
    [InlineData(2, 3)]
    [InlineData(4, 3)]
    [InlineData(5, 4)]
    [InlineData(3, 20)] // wider than a SIMD vector: the vectorised scan and its scalar tail
    [InlineData(2, 37)]
    public void Finds_the_best_path_of_a_brute_force_search(int words, int tags)
    {
        var random = new Random(words * 31 + tags);
        for (int trial = 0; trial < 20; trial++)
        {
            var crf = new CrfParameters([.. Enumerable.Range(0, tags).Select(_ => Vector(random, tags))], Vector(random, tags), Vector(random, tags));
            float[][] emissions = [.. Enumerable.Range(0, words).Select(_ => Vector(random, tags))];

            int[] decoded = ViterbiDecoder.Decode(emissions, crf);

            float best = AllPaths(words, tags).Max(p => Score(p, emissions, crf));
            Assert.Equal(words, decoded.Length);
            Assert.True(Math.Abs(best - Score(decoded, emissions, crf)) < 1e-4, $"trial {trial}: best {best}, decoded {Score(decoded, emissions, crf)}");
        }
    }

    [Fact]
    public void Ties_go_to_the_lowest_tag_index()
    {
        var crf = new CrfParameters([[0f, 0f], [0f, 0f]], [0f, 0f], [0f, 0f]);

        Assert.Equal([0, 0, 0], ViterbiDecoder.Decode([[1f, 1f], [0f, 0f], [2f, 2f]], crf));
    }

    [Theory]
    [InlineData(19)]
    [InlineData(127)]
    public void Ties_go_to_the_lowest_tag_index_across_simd_vectors(int tags)
    {
        // Every path scores the same except that the last word prefers tag tags-2 (in the scalar tail
        // or the last vector): each earlier word then keeps the lowest predecessor, tag 0.
        float[][] flat = [.. Enumerable.Range(0, tags).Select(_ => new float[tags])];
        var crf = new CrfParameters(flat, new float[tags], new float[tags]);
        float[] last = new float[tags];
        last[tags - 2] = 1f;

        Assert.Equal([0, 0, tags - 2], ViterbiDecoder.Decode([new float[tags], new float[tags], last], crf));
    }

    [Fact]
    public void Transitions_can_overrule_emissions()
    {
        // Tag 1 is the better emission on word 1, but 0 → 1 is forbidden.
        var crf = new CrfParameters([[0f, -100f], [0f, 0f]], [0f, -100f], [0f, 0f]);

        Assert.Equal([0, 0], ViterbiDecoder.Decode([[1f, 0f], [0f, 5f]], crf));
    }

    [Fact]
    public void No_words_no_path() => Assert.Empty(ViterbiDecoder.Decode([], new CrfParameters([[0f]], [0f], [0f])));
}
