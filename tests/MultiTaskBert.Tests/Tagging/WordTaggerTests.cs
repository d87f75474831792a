using MultiTaskBert.Core.Tagging;

namespace MultiTaskBert.Tests.Tagging;

/// <summary>Words, first-piece alignment, truncation and character offsets, on hand-made logits.</summary>
public sealed class WordTaggerTests
{
    private static readonly string[] Tags = ["B-city", "I-city", "B-time", "O"];

    /// <summary>Logits [sequence][tags] that make <paramref name="tagAt"/>[position] the argmax at that position.</summary>
    private static float[] Logits(int length, Dictionary<int, string> tagAt)
    {
        var logits = new float[length * Tags.Length];
        for (int p = 0; p < length; p++)
        {
            int tag = Array.IndexOf(Tags, tagAt.TryGetValue(p, out string? t) ? t : "O");
            logits[p * Tags.Length + tag] = 5f;
        }

        return logits;
    }

    [Fact]
    public void Words_and_offsets_index_the_original_text()
    {
        const string text = "  Vols pour   SÃO Paulo  à 7h ";
        // One piece per word except "Paulo" (3 pieces): positions [CLS]=0, Vols=1, pour=2, SÃO=3, Paulo=4..6, à=7, 7h=8.
        Func<string, int> pieces = w => w == "Paulo" ? 3 : 1;
        float[] logits = Logits(10, new Dictionary<int, string> { [3] = "B-city", [4] = "I-city", [5] = "B-time", [8] = "B-time" });

        TaggedText tagged = WordTagger.Tag(text, logits, encodedLength: 10, Tags, crf: null, pieces);

        Assert.Equal(["Vols", "pour", "SÃO", "Paulo", "à", "7h"], tagged.Words.Select(w => w.Word));
        Assert.Equal(["O", "O", "B-city", "I-city", "O", "B-time"], tagged.Words.Select(w => w.Tag));
        Assert.Equal(
            [new TaggedEntity("city", "SÃO Paulo", 14, 23), new TaggedEntity("time", "7h", 27, 29)],
            tagged.Entities);
        foreach (TaggedEntity entity in tagged.Entities)
        {
            Assert.Equal(text[entity.Start..entity.End], entity.Text);
        }
    }

    [Fact]
    public void Repeated_spaces_inside_an_entity_are_kept()
    {
        const string text = "to New   YORK";
        float[] logits = Logits(5, new Dictionary<int, string> { [2] = "B-city", [3] = "I-city" });

        TaggedText tagged = WordTagger.Tag(text, logits, 5, Tags, null, _ => 1);

        Assert.Equal([new TaggedEntity("city", "New   YORK", 3, 13)], tagged.Entities);
    }

    [Fact]
    public void Words_whose_first_piece_was_truncated_read_O()
    {
        // 3 words of 2 pieces each, but only 3 pieces survived: words start at 1, 3 and 5; 5 was cut.
        float[] logits = Logits(5, new Dictionary<int, string> { [1] = "B-time", [3] = "B-city" });

        TaggedText tagged = WordTagger.Tag("aa bb cc", logits, encodedLength: 5, Tags, null, _ => 2);

        Assert.Equal(["B-time", "B-city", "O"], tagged.Words.Select(w => w.Tag));
        Assert.Equal(2, tagged.Entities.Count);
    }

    [Fact]
    public void Aligner_follows_served_word_starts()
    {
        Assert.Equal([1, 3, -1, 4, -1], WordAligner.FirstPieces([2, 1, 0, 5, 1], keptPieces: 7));
        Assert.Equal([1, 2, -1], WordAligner.FirstPieces([1, 1, 1], keptPieces: 2));
    }

    [Fact]
    public void Split_matches_python_str_split()
    {
        // Python: "\u001fa\u3000b\u00a0 c\td\n".split() == ['a', 'b', 'c', 'd']
        Assert.Equal(["a", "b", "c", "d"], WhitespaceWords.Split("\u001fa\u3000b\u00a0 c\td\n").Select(w => w.Text));
        Assert.Empty(WhitespaceWords.Split("   "));
    }

    [Fact]
    public void A_crf_decodes_over_the_words_that_have_a_first_piece()
    {
        // Start forbids I-city; argmax alone would say I-city on the first word.
        float n = -1000f;
        var crf = new CrfParameters(
            [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
            [0, n, 0, 0],
            [0, 0, 0, 0]);
        float[] logits = Logits(4, new Dictionary<int, string> { [1] = "I-city", [2] = "I-city" });

        TaggedText tagged = WordTagger.Tag("x y", logits, 4, Tags, crf, _ => 1);

        Assert.NotEqual("I-city", tagged.Words[0].Tag);
    }
}
