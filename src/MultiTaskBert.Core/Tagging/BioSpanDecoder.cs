namespace MultiTaskBert.Core.Tagging;

/// <summary>An entity over words <see cref="FirstWord"/>..<see cref="LastWord"/> (inclusive).</summary>
public readonly record struct WordSpan(string Type, int FirstWord, int LastWord);

/// <summary>
/// BIO tags → entities, read as conlleval (and the toolkit's <c>bio_spans</c>) does, so served
/// slots match the ones the metrics counted: B-X starts an entity; I-X continues an open entity of
/// type X and otherwise starts a new one; an entity ends before O, B- or a tag of another type.
/// </summary>
public static class BioSpanDecoder
{
    public static IReadOnlyList<WordSpan> Decode(IReadOnlyList<string> tags)
    {
        var spans = new List<WordSpan>();
        string? openType = null;
        int openStart = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            // A sentinel "O" after the last word closes an entity that runs to the end.
            (char prefix, string type) = i < tags.Count ? Parse(tags[i]) : ('O', "");
            bool continues = prefix == 'I' && openType is not null && string.Equals(openType, type, StringComparison.Ordinal);
            if (openType is not null && !continues)
            {
                spans.Add(new WordSpan(openType, openStart, i - 1));
                openType = null;
            }

            if (prefix is 'B' or 'I' && !continues)
            {
                openType = type;
                openStart = i;
            }
        }

        return spans;
    }

    private static (char Prefix, string Type) Parse(string tag) =>
        tag != "O" && tag.Length > 2 && tag[1] == '-' ? (tag[0], tag[2..]) : ('O', "");
}
