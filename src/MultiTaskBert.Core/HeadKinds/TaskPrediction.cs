namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// One task's prediction for one input, before it is answered (<see cref="HeadKind.Answer"/>).
/// <see cref="Logits"/> is the raw head output (flattened for per-token heads).
/// </summary>
public abstract record TaskPrediction(IReadOnlyList<float> Logits)
{
    /// <summary>The kind that made it, and answers it.</summary>
    public abstract HeadKind Kind { get; }
}
