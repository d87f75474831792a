using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>A validated, tokenized request bound to the snapshot it was planned against.</summary>
/// <remarks><see cref="Alignments"/>: per input, the words of the original text aligned to word pieces
/// (set only for inputs that a tagging task reads).</remarks>
internal sealed record PreparedRequest(LoadedBundle Bundle, int InputCount, BatchPlan Plan, EncodedInput[] Encoded, WordAlignment?[] Alignments)
{
    /// <summary>Trunk rows (an input needing both encodings has two).</summary>
    public int RowCount => Encoded.Length;

    /// <summary>Longest row in tokens.</summary>
    public int MaxLength { get; } = Encoded.Length == 0 ? 0 : Encoded.Max(e => e.Length);
}
