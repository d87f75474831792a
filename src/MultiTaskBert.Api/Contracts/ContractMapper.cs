using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Engine results and bundle metadata → wire DTOs.</summary>
internal static class ContractMapper
{
    /// <param name="predictions">One input's predictions by task.</param>
    /// <param name="fallbackThresholds">The request's own fallback thresholds by task (null: the bundle's).</param>
    public static IReadOnlyDictionary<string, TaskResult> ToResults(
        IReadOnlyDictionary<string, TaskPrediction> predictions, IReadOnlyDictionary<string, double>? fallbackThresholds = null) =>
        predictions.ToDictionary(
            p => p.Key,
            p => p.Value.Kind.Answer(p.Value, fallbackThresholds is not null && fallbackThresholds.TryGetValue(p.Key, out double t) ? t : null),
            StringComparer.Ordinal);

    public static TaskInfo ToTaskInfo(TaskDefinition task) => new(
        task.Name,
        task.Version,
        task.Description,
        task.Kind.Name,
        task.Input.ToString().ToLowerInvariant(),
        task.Labels,
        task.Range is { } r ? [r.Min, r.Max] : null,
        task.Metrics is { } m ? new TaskMetricsInfo(m.Split, m.Primary, m.Values, m.Teacher, m.FullFineTuning) : null,
        task.Fallback is { } f ? ToFallbackInfo(f) : task.Examples?.Fallback is { } e ? ToFallbackInfo(e) : null);

    private static FallbackInfo ToFallbackInfo(ExamplesFallback fallback) =>
        new(fallback.Label, ExamplesKind.CosineRule, fallback.Threshold, [-1, 1], fallback.Selection);

    private static FallbackInfo ToFallbackInfo(FallbackPolicy fallback)
    {
        (double min, double max) = FallbackPolicy.ThresholdRange(fallback.Rule);
        return new FallbackInfo(fallback.Label, fallback.RuleName, fallback.Threshold, [min, max], fallback.Selection);
    }
}
