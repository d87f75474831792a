using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Checks a request's <c>fallbackThresholds</c> against the snapshot the request is planned on:
/// each key is a task with a fallback, each value within its rule's range. Errors are keyed
/// <c>fallbackThresholds.&lt;task&gt;</c>.
/// </summary>
internal static class FallbackThresholdCheck
{
    public static Dictionary<string, string[]> Problems(IReadOnlyDictionary<string, double>? thresholds, BundleSnapshot bundle)
    {
        var errors = new Dictionary<string, string[]>(StringComparer.Ordinal);
        foreach ((string name, double threshold) in thresholds ?? new Dictionary<string, double>())
        {
            string field = RequestFieldNames.FallbackThreshold(name);
            TaskDefinition? task = bundle.Tasks.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.Ordinal));
            if (task is null)
            {
                errors[field] = [$"unknown task '{name}' (GET /tasks lists them)"];
            }
            else if (task.Examples?.Fallback is not null)
            {
                if (!ExamplesFallback.InRange(threshold))
                {
                    errors[field] = [$"must be in [-1, 1] for the {ExamplesKind.CosineRule} rule, got {threshold}"];
                }
            }
            else if (task.Fallback is not { } fallback)
            {
                errors[field] = [$"task '{name}' has no fallback to set a threshold for"];
            }
            else if (!FallbackPolicy.InRange(fallback.Rule, threshold))
            {
                (double min, double max) = FallbackPolicy.ThresholdRange(fallback.Rule);
                errors[field] = [$"must be in [{min}, {max}] for the {fallback.RuleName} rule, got {threshold}"];
            }
        }

        return errors;
    }
}
