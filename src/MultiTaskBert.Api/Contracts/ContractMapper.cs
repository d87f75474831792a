using System.Text.Json;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Engine results and bundle metadata → wire DTOs.</summary>
internal static class ContractMapper
{
    /// <param name="predictions">One input's predictions by task.</param>
    /// <param name="fallbackThresholds">The request's own fallback thresholds by task (null: the bundle's).</param>
    /// <param name="json">The service's JSON settings: an answer they cannot write (a NaN or infinity) becomes that task's error.</param>
    public static IReadOnlyDictionary<string, TaskResult> ToResults(
        IReadOnlyDictionary<string, TaskPrediction> predictions, IReadOnlyDictionary<string, double>? fallbackThresholds, JsonSerializerOptions json) =>
        predictions.ToDictionary(
            p => p.Key,
            p => Writable(p.Value.Kind.Answer(p.Value, fallbackThresholds is not null && fallbackThresholds.TryGetValue(p.Key, out double t) ? t : null), json),
            StringComparer.Ordinal);

    /// <summary>The answer, or a task error when JSON cannot carry it (System.Text.Json refuses NaN and infinities).</summary>
    private static TaskResult Writable(TaskResult result, JsonSerializerOptions json)
    {
        try
        {
            JsonSerializer.Serialize(Stream.Null, result, json);
            return result;
        }
        catch (ArgumentException ex)
        {
            return new TaskErrorResult(new TaskError("The task's answer cannot be written as JSON.", ex.Message));
        }
    }

    /// <summary>The v2 shape of <see cref="ToResults"/>: a list of answers carrying their task and kind.</summary>
    public static IReadOnlyList<TaskAnswer> ToAnswers(
        IReadOnlyDictionary<string, TaskPrediction> predictions, IReadOnlyDictionary<string, double>? fallbackThresholds, JsonSerializerOptions json) =>
        [.. ToResults(predictions, fallbackThresholds, json).Select(r => new TaskAnswer(r.Key, predictions[r.Key].Kind, r.Value))];

    public static TaskInfo ToTaskInfo(TaskDefinition task) => new(
        task.Name,
        task.Version,
        task.Description,
        task.Kind.Name,
        task.Input.ToString().ToLowerInvariant(),
        task.Labels,
        task.Range is { } r ? [r.Min, r.Max] : null,
        task.Metrics is { } m ? new TaskMetricsInfo(m.Split, m.Primary, m.Values, m.Teacher, m.FullFineTuning) : null,
        task.Fallback is { } f ? ToFallbackInfo(f) : task.Examples?.Fallback is { } e ? ToFallbackInfo(e) : null)
    {
        ServedByDefault = task.ServedByDefault,
        Temperature = task.Kind.HasFallback ? task.Temperature : null,
        Source = task.PairSource is { } source ? ToPairSourceInfo(source) : null,
    };

    private static PairSourceInfo ToPairSourceInfo(PairSource source) => source.FromEmbeddings
        ? new(source.Way, source.Embedding, source.Features, source.Weights, source.Bias, ToFitInfo(source.Fit), source.Dev)
        : new(source.Way, null, null, null, null, ToFitInfo(source.Fit), source.Dev);

    private static PairFitInfo? ToFitInfo(PairFitManifest? fit) => fit is null ? null : new(fit.Split, fit.Examples, fit.Loss, fit.Seed);

    private static FallbackInfo ToFallbackInfo(ExamplesFallback fallback) =>
        new(fallback.Label, ExamplesKind.CosineRule, fallback.Threshold, [ExamplesFallback.MinThreshold, ExamplesFallback.MaxThreshold], fallback.Selection);

    private static FallbackInfo ToFallbackInfo(FallbackPolicy fallback)
    {
        (double min, double max) = FallbackPolicy.ThresholdRange(fallback.Rule);
        return new FallbackInfo(fallback.Label, fallback.RuleName, fallback.Threshold, [min, max], fallback.Selection)
        {
            Expected = fallback.Expected,
            Calibration = fallback.Calibration is { } c ? new CalibrationInfo(c.Examples, c.Method) : null,
        };
    }
}
