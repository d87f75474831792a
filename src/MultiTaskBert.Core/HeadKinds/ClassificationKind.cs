using System.Text.Json.Serialization;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// One class per input: the head outputs a logit per label ([batch, labels]); the prediction is
/// their softmax and its top label, answered as the fallback label when the task has a fallback
/// rule and the rule fires.
/// </summary>
public sealed class ClassificationKind : HeadKind<ClassificationPrediction, ClassificationResult>
{
    public static ClassificationKind Instance { get; } = new();

    private ClassificationKind()
    {
    }

    public override string Name => "classification";
    public override string WidthField => "output.labels";
    public override bool HasFallback => true;

    protected override OutputSettings ReadKindOutput(TaskOutputManifest output, TaskInputKind input, string at) =>
        new(RequireLabels(output.Labels, $"{at}.output.labels", minimum: 2))
        {
            Fallback = output.Fallback is { } f ? ReadFallback(f, $"{at}.output.fallback") : null,
        };

    public override ClassificationPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment)
    {
        ArgumentNullException.ThrowIfNull(task);
        double[] probabilities = Softmax(row);
        int best = Numerics.ArgMax<double>(probabilities);
        var scores = new Dictionary<string, double>(task.Labels.Count, StringComparer.Ordinal);
        for (int i = 0; i < probabilities.Length; i++)
        {
            scores[task.Labels[i]] = probabilities[i];
        }

        FallbackMeasure? fallback = task.Fallback is { } policy ? new FallbackMeasure(policy, policy.Measure(row, probabilities)) : null;
        return new ClassificationPrediction(task.Labels[best], probabilities[best], scores, row.ToArray(), fallback);
    }

    protected override ClassificationResult Answer(ClassificationPrediction prediction, double? fallbackThreshold)
    {
        (string label, bool fired, double threshold) = prediction.Answer(fallbackThreshold);
        FallbackResult? fallback = fired ? new FallbackResult(prediction.Label, prediction.Fallback!.Policy.RuleName, prediction.Fallback.Value, threshold) : null;
        return new ClassificationResult(label, prediction.Score, prediction.Scores, fallback);
    }

    internal static double[] Softmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits)
        {
            max = Math.Max(max, l);
        }

        var result = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            result[i] = Math.Exp(logits[i] - max);
            sum += result[i];
        }

        for (int i = 0; i < result.Length; i++)
        {
            result[i] /= sum;
        }

        return result;
    }

    /// <summary>A fallback's label, rule (one of <see cref="FallbackPolicy.RuleNames"/>) and a threshold within the rule's range.</summary>
    private static FallbackPolicy ReadFallback(FallbackManifest fallback, string field)
    {
        BundleLoader.RequireNonEmpty(fallback.Label, $"{field}.label");
        FallbackRule rule = FallbackPolicy.ParseRule(fallback.Rule)
            ?? throw Invalid($"{field}.rule", $"unknown rule '{fallback.Rule}' (expected {string.Join(" | ", FallbackPolicy.RuleNames)})");
        (double min, double max) = FallbackPolicy.ThresholdRange(rule);
        if (!(fallback.Threshold >= min && fallback.Threshold <= max))
        {
            throw Invalid($"{field}.threshold", $"must be in [{min}, {max}] for rule {fallback.Rule}, not {fallback.Threshold}");
        }

        return new FallbackPolicy(fallback.Label, rule, fallback.Threshold) { Selection = fallback.Selection };
    }
}

/// <summary>
/// A classification prediction: the model's top <see cref="Label"/> and its probabilities. For a task
/// with a fallback, <see cref="Fallback"/> holds the rule's measure; <see cref="Answer"/> applies it.
/// </summary>
public sealed record ClassificationPrediction(
    string Label, double Score, IReadOnlyDictionary<string, double> Scores, IReadOnlyList<float> Logits, FallbackMeasure? Fallback = null)
    : TaskPrediction(Logits)
{
    public override HeadKind Kind => ClassificationKind.Instance;

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

/// <summary>
/// A classification task's answer: <c>label</c>, <c>score</c>, <c>scores</c>, and <c>fallback</c> when
/// the task's out-of-scope rule fired (<c>label</c> is then the fallback label).
/// </summary>
/// <param name="Label">The answered label.</param>
/// <param name="Score">The model's top class probability (of <c>fallback.topLabel</c> when the fallback fired).</param>
/// <param name="Scores">Every label's probability.</param>
/// <param name="Fallback">Present only when the fallback fired.</param>
public sealed record ClassificationResult(
    string Label,
    double Score,
    IReadOnlyDictionary<string, double> Scores,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] FallbackResult? Fallback = null) : TaskResult;

/// <summary>
/// Present when a task answered its fallback label: the model's own top label, the rule, the rule's
/// measure of this output and the threshold it fell below.
/// </summary>
public sealed record FallbackResult(string TopLabel, string Rule, double Value, double Threshold);
