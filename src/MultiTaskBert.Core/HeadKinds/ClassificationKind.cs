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
            Temperature = ReadTemperature(output.Temperature, $"{at}.output.temperature"),
        };

    public override ClassificationPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment) =>
        Predict(task, row, outOfDomainDistance: null);

    public override TaskPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, double? outOfDomainDistance, EncodedInput encoded, WordAlignment? alignment) =>
        Predict(task, row, outOfDomainDistance);

    private static ClassificationPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, double? outOfDomainDistance)
    {
        ArgumentNullException.ThrowIfNull(task);
        double[] probabilities = Numerics.Softmax(row, task.Temperature);
        int best = Numerics.ArgMax<double>(probabilities);
        var scores = new Dictionary<string, double>(task.Labels.Count, StringComparer.Ordinal);
        for (int i = 0; i < probabilities.Length; i++)
        {
            scores[task.Labels[i]] = probabilities[i];
        }

        FallbackMeasure? fallback = task.Fallback is { } policy ? new FallbackMeasure(policy, policy.Measure(row, probabilities, outOfDomainDistance)) : null;
        return new ClassificationPrediction(task.Labels[best], probabilities[best], scores, row.ToArray(), fallback) { OutOfDomainDistance = outOfDomainDistance };
    }

    /// <summary>
    /// The top label, or the fallback label when the task's rule fires at <paramref name="fallbackThreshold"/>
    /// (null: the manifest's threshold); the answer then says so and keeps the model's own top label.
    /// </summary>
    protected override ClassificationResult Answer(ClassificationPrediction prediction, double? fallbackThreshold)
    {
        if (prediction.Fallback is not { } measure)
        {
            return new ClassificationResult(prediction.Label, prediction.Score, prediction.Scores);
        }

        double threshold = fallbackThreshold ?? measure.Policy.Threshold;
        return measure.Fires(threshold)
            ? new ClassificationResult(measure.Policy.Label, prediction.Score, prediction.Scores,
                new FallbackResult(prediction.Label, measure.Policy.RuleName, measure.Value, threshold))
            : new ClassificationResult(prediction.Label, prediction.Score, prediction.Scores);
    }

    /// <summary>A fallback's label, rule (one of <see cref="FallbackPolicy.RuleNames"/>) and a threshold within the rule's range.</summary>
    private static FallbackPolicy ReadFallback(FallbackManifest fallback, string field)
    {
        BundleLoader.RequireNonEmpty(fallback.Label, $"{field}.label");
        FallbackRule rule = FallbackPolicy.ParseRule(fallback.Rule)
            ?? throw Invalid($"{field}.rule", $"unknown rule '{fallback.Rule}' (expected {string.Join(" | ", FallbackPolicy.RuleNames)})");
        if (!FallbackPolicy.InRange(rule, fallback.Threshold))
        {
            (double min, double max) = FallbackPolicy.ThresholdRange(rule);
            throw Invalid($"{field}.threshold", $"must be in [{min}, {max}] for rule {fallback.Rule}, not {fallback.Threshold}");
        }

        return new FallbackPolicy(fallback.Label, rule, fallback.Threshold)
        {
            Selection = fallback.Selection,
            Expected = fallback.Expected,
            Calibration = rule == FallbackRule.Mahalanobis ? DistanceCalibration.Read(fallback.Calibration, $"{field}.calibration") : null,
        };
    }

    /// <summary>softmax(logits / T): T in (0, 100], 1 when absent.</summary>
    private static double ReadTemperature(double? temperature, string field)
    {
        if (temperature is not { } t)
        {
            return 1;
        }

        return double.IsFinite(t) && t > 0 && t <= 100 ? t : throw Invalid(field, $"must be in (0, 100], not {t}");
    }
}

/// <summary>
/// A classification prediction: the model's top <see cref="Label"/> and its probabilities. For a task
/// with a fallback, <see cref="Fallback"/> holds the rule's measure; the kind's answer applies it.
/// </summary>
public sealed record ClassificationPrediction(
    string Label, double Score, IReadOnlyDictionary<string, double> Scores, IReadOnlyList<float> Logits, FallbackMeasure? Fallback = null)
    : TaskPrediction(Logits)
{
    public override HeadKind Kind => ClassificationKind.Instance;

    /// <summary>The head's out-of-domain distance for this input (<c>head.outOfDomain</c>), or null when it has none.</summary>
    public double? OutOfDomainDistance { get; init; }
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
