namespace MultiTaskBert.Core.Tagging;

/// <summary>
/// Where each word's first piece sits in <c>[CLS] pieces… [SEP]</c>, as the toolkit's
/// <c>served_word_starts</c>: each word is tokenized alone, so its first piece is at
/// 1 + the pieces of the words before it; -1 when it has no piece or truncation cut it.
/// </summary>
public static class WordAligner
{
    /// <param name="pieceCounts">Pieces of each word tokenized alone.</param>
    /// <param name="keptPieces">Pieces of the text that survived truncation (encoding length - 2).</param>
    public static int[] FirstPieces(IReadOnlyList<int> pieceCounts, int keptPieces)
    {
        var starts = new int[pieceCounts.Count];
        int offset = 0;
        for (int w = 0; w < starts.Length; w++)
        {
            starts[w] = pieceCounts[w] > 0 && offset < keptPieces ? offset + 1 : -1;
            offset += pieceCounts[w];
        }

        return starts;
    }
}
