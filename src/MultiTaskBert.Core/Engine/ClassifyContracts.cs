using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
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

/// <summary>
/// A classification answer: the model's top <see cref="Label"/> and its probabilities. For a task
/// with a fallback, <see cref="Fallback"/> holds the rule's measure; <see cref="Answer"/> applies it.
/// </summary>
public sealed record ClassificationPrediction(
    string Label, double Score, IReadOnlyDictionary<string, double> Scores, IReadOnlyList<float> Logits, FallbackMeasure? Fallback = null)
    : TaskPrediction(Logits)
{
    /// <summary>
    /// The label to answer at <paramref name="threshold"/> (null: the manifest's): the fallback label
    /// when the task's rule fires, else the top label; <c>Fired</c> says which.
    /// </summary>
    public (string Label, bool Fired, double Threshold) Answer(double? threshold = null)
    {
        if (Fallback is null)
        {
            return (Label, false, double.NaN);
        }

        double at = threshold ?? Fallback.Policy.Threshold;
        return Fallback.Fires(at) ? (Fallback.Policy.Label, true, at) : (Label, false, at);
    }
}

public sealed record RegressionPrediction(double Value, IReadOnlyList<float> Logits) : TaskPrediction(Logits);

/// <summary>
/// A tagging task's answer: one BIO tag per whitespace word of the text and the entities (slots)
/// they spell, with character offsets into the original text. <see cref="TaskPrediction.Logits"/>
/// are the per-piece logits of the encoding, row-major [sequence][tags].
/// </summary>
public sealed record TaggingPrediction(IReadOnlyList<WordTag> Words, IReadOnlyList<TaggedEntity> Entities, IReadOnlyList<float> Logits)
    : TaskPrediction(Logits);

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
/// <remarks><see cref="Alignments"/>: per input, the words of the original text aligned to word pieces
/// (set only for inputs that a tagging task reads).</remarks>
internal sealed record PreparedRequest(LoadedBundle Bundle, int InputCount, BatchPlan Plan, EncodedInput[] Encoded, WordAlignment?[] Alignments)
{
    /// <summary>Trunk rows (an input needing both encodings has two).</summary>
    public int RowCount => Encoded.Length;

    /// <summary>Longest row in tokens.</summary>
    public int MaxLength { get; } = Encoded.Length == 0 ? 0 : Encoded.Max(e => e.Length);
}
