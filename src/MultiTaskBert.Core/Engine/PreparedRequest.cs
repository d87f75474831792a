using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>A validated, tokenized request bound to the snapshot it was planned against.</summary>
/// <remarks><see cref="Alignments"/>: per input, the words of the original text aligned to word pieces
/// (set only for inputs that a tagging task reads). <see cref="Pairs"/>: set when pair tasks are computed
/// from embeddings, whose texts then ran as inputs of their own (<see cref="InputCount"/> counts them).</remarks>
internal sealed record PreparedRequest(
    LoadedBundle Bundle, int InputCount, BatchPlan Plan, EncodedInput[] Encoded, WordAlignment?[] Alignments, EmbeddingPairExpansion? Pairs = null)
{
    /// <summary>The request's answer from the results of its planned inputs.</summary>
    public ClassifyBatchResult Complete(ClassifyBatchResult planned) => Pairs?.Fold(planned, this) ?? planned;

    /// <summary>Trunk rows (an input needing both encodings has two).</summary>
    public int RowCount => Encoded.Length;

    /// <summary>Longest row in tokens.</summary>
    public int MaxLength { get; } = Encoded.Length == 0 ? 0 : Encoded.Max(e => e.Length);
}
