namespace MultiTaskBert.Core.Tagging;

/// <summary>
/// The whitespace words of an original text and the position of each word's first word piece in
/// its single-text encoding (-1: truncated away or no piece). Computed once per input, on the
/// caller's thread, and shared by every tagging task that reads the input.
/// </summary>
public sealed record WordAlignment(string Text, IReadOnlyList<TextWord> Words, int[] FirstPieces)
{
    /// <param name="text">The original text.</param>
    /// <param name="encodedLength">Length of the text's single-text encoding, [CLS] and [SEP] included.</param>
    /// <param name="countPieces">Word pieces of one word tokenized alone.</param>
    public static WordAlignment Create(string text, int encodedLength, Func<string, int> countPieces)
    {
        ArgumentNullException.ThrowIfNull(countPieces);
        IReadOnlyList<TextWord> words = WhitespaceWords.Split(text);
        int[] starts = WordAligner.FirstPieces([.. words.Select(w => countPieces(w.Text))], Math.Max(0, encodedLength - 2));
        return new WordAlignment(text, words, starts);
    }
}
