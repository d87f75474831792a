using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// A validated, tokenized request bound to the snapshot it was planned against
/// (<see cref="MultiTaskEngine.Prepare"/>). It holds a lease on that snapshot until disposed, so a
/// snapshot retired by a hot swap stays usable for the requests already planned against it.
/// </summary>
/// <remarks><see cref="Alignments"/>: per input, the words of the original text aligned to word pieces
/// (set only for inputs that a tagging task reads). <see cref="Pairs"/>: set when pair tasks are computed
/// from embeddings, whose texts then ran as inputs of their own (<see cref="InputCount"/> counts them).</remarks>
internal sealed class PreparedRequest : IDisposable
{
    private int _leased;

    // leased: whether this request took a lease of its own (false: the caller keeps the snapshot alive, as the warm-up does).
    public PreparedRequest(BundleSnapshot snapshot, bool leased, int inputCount, RequestPlan plan, EncodedInput[] encoded, WordAlignment?[] alignments,
        EmbeddingPairExpansion? pairs = null)
    {
        Pairs = pairs;
        Snapshot = snapshot;
        _leased = leased ? 1 : 0;
        InputCount = inputCount;
        Plan = plan;
        Encoded = encoded;
        Alignments = alignments;
        MaxLength = encoded.Length == 0 ? 0 : encoded.Max(e => e.Length);
    }

    public BundleSnapshot Snapshot { get; }
    public int InputCount { get; }
    public RequestPlan Plan { get; }
    public EncodedInput[] Encoded { get; }
    public WordAlignment?[] Alignments { get; }
    public EmbeddingPairExpansion? Pairs { get; }

    /// <summary>The request's answer from the results of its planned inputs.</summary>
    public RequestPredictions Complete(RequestPredictions planned) => Pairs?.Fold(planned, this) ?? planned;

    /// <summary>Trunk rows (an input needing both encodings has two).</summary>
    public int RowCount => Encoded.Length;

    /// <summary>Longest row in tokens.</summary>
    public int MaxLength { get; }

    /// <summary>Releases the snapshot's lease (once).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _leased, 0) == 1)
        {
            Snapshot.ReleaseLease();
        }
    }
}
