using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>One utterance, or an utterance pair for pair tasks.</summary>
public sealed record ClassifyInput(string Text, string? TextPair = null)
{
    public bool IsPair => TextPair is not null;
}

/// <summary>Predictions per input, in input order, and the model that made them.</summary>
public sealed record ClassifyBatchResult(string Model, IReadOnlyList<IReadOnlyDictionary<string, TaskPrediction>> Results);

/// <summary>One task's answer for one input. <see cref="Logits"/> is the raw head output (flattened for tagging).</summary>
public abstract record TaskPrediction(IReadOnlyList<float> Logits);

public sealed record ClassificationPrediction(string Label, double Score, IReadOnlyDictionary<string, double> Scores, IReadOnlyList<float> Logits)
    : TaskPrediction(Logits);

public sealed record RegressionPrediction(double Value, IReadOnlyList<float> Logits) : TaskPrediction(Logits);

/// <summary>
/// Per-token tags of a tagging task. Span decoding into entities (BIO → slots with character
/// offsets) is a later issue; it will add an <c>Entities</c> list next to <see cref="Tokens"/>.
/// </summary>
public sealed record TaggingPrediction(IReadOnlyList<TokenTag> Tokens, IReadOnlyList<float> Logits) : TaskPrediction(Logits);

public sealed record TokenTag(string Token, string Tag, double Score, TokenSegment Segment, Range Range);

/// <summary>
/// A request the engine cannot serve as asked (unknown task, pair task without a text pair, …).
/// <see cref="Field"/> uses batch paths: <c>tasks[1]</c>, <c>inputs[3].textPair</c>.
/// </summary>
public sealed class InvalidClassifyRequestException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>No bundle is loaded yet (start-up has not finished).</summary>
public sealed class EngineNotReadyException() : Exception("The model is still loading.");

/// <summary>One request of a multi-request call: its inputs and its task selection (null = every task that fits).</summary>
public sealed record InferenceRequest(IReadOnlyList<ClassifyInput> Inputs, IReadOnlyList<string>? Tasks = null);

/// <summary>A validated, tokenized request bound to the snapshot it was planned against.</summary>
internal sealed record PreparedRequest(LoadedBundle Bundle, int InputCount, BatchPlan Plan, EncodedInput[] Encoded)
{
    /// <summary>Trunk rows (an input needing both encodings has two).</summary>
    public int RowCount => Encoded.Length;

    /// <summary>Longest row in tokens.</summary>
    public int MaxLength { get; } = Encoded.Length == 0 ? 0 : Encoded.Max(e => e.Length);
}
