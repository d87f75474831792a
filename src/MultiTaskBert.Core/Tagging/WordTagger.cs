namespace MultiTaskBert.Core.Tagging;

/// <summary>A word of the original text and its decoded BIO tag; offsets into the original text (end exclusive).</summary>
public sealed record WordTag(string Word, string Tag, int Start, int End);

/// <summary>A slot: its type and the original substring it covers (end exclusive), so the user's spelling is kept.</summary>
public sealed record TaggedEntity(string Type, string Text, int Start, int End);

/// <summary>Word tags and the entities they spell.</summary>
public sealed record TaggedText(IReadOnlyList<WordTag> Words, IReadOnlyList<TaggedEntity> Entities);

/// <summary>
/// Per-piece logits of one single-text encoding → one tag per whitespace word → entities, as
/// docs/bundle-format.md "Tagging heads" describes (the toolkit's decoder does the same).
/// </summary>
public static class WordTagger
{
    /// <param name="text">The original text; words and offsets are read from it.</param>
    /// <param name="logits">Row-major [sequence][tags] logits of the encoding (at least <paramref name="encodedLength"/> rows).</param>
    /// <param name="encodedLength">Length of the encoding, [CLS] and [SEP] included.</param>
    /// <param name="tags">The task's tags in head-output order (holds "O").</param>
    /// <param name="crf">The task's CRF, or null for argmax per word.</param>
    /// <param name="countPieces">Word pieces of one word tokenized alone.</param>
    public static TaggedText Tag(
        string text,
        ReadOnlySpan<float> logits,
        int encodedLength,
        IReadOnlyList<string> tags,
        CrfParameters? crf,
        Func<string, int> countPieces) =>
        Tag(WordAlignment.Create(text, encodedLength, countPieces), logits, tags, crf);

    /// <param name="alignment">The text's words and their first-piece positions.</param>
    /// <param name="logits">Row-major [sequence][tags] logits of the text's single-text encoding.</param>
    /// <param name="tags">The task's tags in head-output order (holds "O").</param>
    /// <param name="crf">The task's CRF, or null for argmax per word.</param>
    public static TaggedText Tag(WordAlignment alignment, ReadOnlySpan<float> logits, IReadOnlyList<string> tags, CrfParameters? crf)
    {
        ArgumentNullException.ThrowIfNull(alignment);
        ArgumentNullException.ThrowIfNull(tags);
        string text = alignment.Text;
        IReadOnlyList<TextWord> words = alignment.Words;
        int[] starts = alignment.FirstPieces;
        int width = tags.Count;

        var emissions = new List<float[]>(words.Count);
        foreach (int position in starts)
        {
            if (position >= 0)
            {
                emissions.Add(logits.Slice(position * width, width).ToArray());
            }
        }

        int[] decoded = crf is null ? [.. emissions.Select(row => Numerics.ArgMax<float>(row))] : ViterbiDecoder.Decode(emissions, crf);
        var wordTags = new List<WordTag>(words.Count);
        int next = 0;
        for (int w = 0; w < words.Count; w++)
        {
            // Words without a first piece (truncated away) are skipped by the decoder and read "O".
            string tag = starts[w] >= 0 ? tags[decoded[next++]] : Outside(tags);
            wordTags.Add(new WordTag(words[w].Text, tag, words[w].Start, words[w].End));
        }

        var entities = new List<TaggedEntity>();
        foreach (WordSpan span in BioSpanDecoder.Decode([.. wordTags.Select(t => t.Tag)]))
        {
            int start = words[span.FirstWord].Start;
            int end = words[span.LastWord].End;
            entities.Add(new TaggedEntity(span.Type, text[start..end], start, end));
        }

        return new TaggedText(wordTags, entities);
    }

    /// <summary>The "O" tag of the task's tag set (the bundle loader requires one).</summary>
    private static string Outside(IReadOnlyList<string> tags) =>
        tags.FirstOrDefault(t => string.Equals(t, "O", StringComparison.Ordinal)) ?? throw new InvalidOperationException("tag set has no 'O'");
}
