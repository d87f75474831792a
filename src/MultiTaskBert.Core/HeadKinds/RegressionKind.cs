using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>One number per input ([batch, 1]), clamped to the manifest's <c>output.range</c> when it has one.</summary>
public sealed class RegressionKind : HeadKind<RegressionPrediction, RegressionResult>
{
    public static RegressionKind Instance { get; } = new();

    private RegressionKind()
    {
    }

    public override string Name => "regression";

    /// <summary>The width is 1, implied by the kind.</summary>
    public override string WidthField => "output.kind";

    public override int OutputWidth(TaskDefinition task) => 1;

    protected override OutputSettings ReadKindOutput(TaskOutputManifest output, TaskInputKind input, string at)
    {
        if (output.Range is not { } r)
        {
            return new OutputSettings([]);
        }

        if (r.Count != 2 || !(r[0] <= r[1]))
        {
            throw Invalid($"{at}.output.range", "must be [min, max] with min <= max");
        }

        return new OutputSettings([]) { Range = new ValueRange(r[0], r[1]) };
    }

    public override RegressionPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment)
    {
        ArgumentNullException.ThrowIfNull(task);
        double value = row[0];
        return new RegressionPrediction(task.Range?.Clamp(value) ?? value, row.ToArray());
    }

    protected override RegressionResult Answer(RegressionPrediction prediction, double? fallbackThreshold) => new(prediction.Value);
}

/// <summary>A regression prediction: the value, already clamped to the task's range.</summary>
public sealed record RegressionPrediction(double Value, IReadOnlyList<float> Logits) : TaskPrediction(Logits)
{
    public override HeadKind Kind => RegressionKind.Instance;
}

/// <summary>A regression task's answer: <c>value</c>, within the task's range when it has one (<c>GET /tasks</c>).</summary>
public sealed record RegressionResult(double Value) : TaskResult;
