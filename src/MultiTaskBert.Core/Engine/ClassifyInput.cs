namespace MultiTaskBert.Core.Engine;

/// <summary>One utterance, or an utterance pair for pair tasks.</summary>
public sealed record ClassifyInput(string Text, string? TextPair = null)
{
    public bool IsPair => TextPair is not null;
}
