namespace MultiTaskBert.Core.Tokenization;

/// <summary>
/// Encoded inputs padded to the longest member, laid out row-major as the int64
/// <c>[batch, sequence]</c> tensors the trunk takes.
/// </summary>
public sealed class TokenBatch
{
    private TokenBatch(IReadOnlyList<EncodedInput> inputs, int sequenceLength, long[] inputIds, long[] tokenTypeIds, long[] attentionMask)
    {
        Inputs = inputs;
        SequenceLength = sequenceLength;
        InputIds = inputIds;
        TokenTypeIds = tokenTypeIds;
        AttentionMask = attentionMask;
    }

    public IReadOnlyList<EncodedInput> Inputs { get; }
    public int BatchSize => Inputs.Count;
    public int SequenceLength { get; }
    public long[] InputIds { get; }
    public long[] TokenTypeIds { get; }
    public long[] AttentionMask { get; }

    /// <summary>Tensor shape <c>[batch, sequence]</c>.</summary>
    public long[] Shape => [BatchSize, SequenceLength];

    public static TokenBatch Pad(IReadOnlyList<EncodedInput> inputs, int paddingTokenId)
    {
        ArgumentOutOfRangeException.ThrowIfZero(inputs.Count);
        int sequenceLength = inputs.Max(i => i.Length);
        int size = inputs.Count * sequenceLength;
        var ids = new long[size];
        var types = new long[size];
        var mask = new long[size];
        Array.Fill(ids, paddingTokenId);
        for (int row = 0; row < inputs.Count; row++)
        {
            EncodedInput input = inputs[row];
            int offset = row * sequenceLength;
            for (int col = 0; col < input.Length; col++)
            {
                ids[offset + col] = input.InputIds[col];
                types[offset + col] = input.TokenTypeIds[col];
                mask[offset + col] = 1;
            }
        }

        return new TokenBatch(inputs, sequenceLength, ids, types, mask);
    }
}
