namespace MultiTaskBert.Core.Batching;

/// <summary>
/// What a request, or a batch of them, costs the engine: the budget arithmetic of batching, in one
/// place. Loads add up like a batch does: inputs and rows sum, every row pads to the longest.
/// </summary>
/// <param name="Inputs">Utterances (what <see cref="BatchingOptions.MaxBatchSize"/> counts).</param>
/// <param name="Rows">Encoded rows: an input asking for single and pair tasks has two.</param>
/// <param name="LongestRow">Tokens of the longest row, the length every row pads to.</param>
internal readonly record struct BatchLoad(int Inputs, int Rows, int LongestRow)
{
    /// <summary>Tokens of the padded batch (rows × longest row; what <see cref="BatchingOptions.MaxBatchTokens"/> counts).</summary>
    public long PaddedTokens => (long)Rows * LongestRow;

    /// <summary>The load of both in one batch.</summary>
    public static BatchLoad operator +(BatchLoad left, BatchLoad right) =>
        new(left.Inputs + right.Inputs, left.Rows + right.Rows, Math.Max(left.LongestRow, right.LongestRow));
}
