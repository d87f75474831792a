using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Endpoints;

/// <summary>
/// Checks a request's <c>fallbackThresholds</c> against the loaded bundle: each key is a task with a
/// fallback, each value within its rule's range. Errors are keyed <c>fallbackThresholds.&lt;task&gt;</c>.
/// </summary>
internal static class FallbackThresholdValidator
{
    public static void Validate(Dictionary<string, string[]> errors, IReadOnlyDictionary<string, double>? thresholds, LoadedBundle? bundle)
    {
        if (thresholds is null || bundle is null)
        {
            return; // no override; or not ready, which the engine reports as 503
        }

        foreach ((string name, double threshold) in thresholds)
        {
            string field = $"fallbackThresholds.{name}";
            TaskDefinition? task = bundle.Tasks.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.Ordinal));
            if (task is null)
            {
                Add(errors, field, $"unknown task '{name}' (GET /tasks lists them)");
            }
            else if (task.Examples?.Fallback is not null)
            {
                if (!(threshold >= -1 && threshold <= 1))
                {
                    Add(errors, field, $"must be in [-1, 1] for the {ExamplesKind.CosineRule} rule, got {threshold}");
                }
            }
            else if (task.Fallback is not { } fallback)
            {
                Add(errors, field, $"task '{name}' has no fallback to set a threshold for");
            }
            else
            {
                (double min, double max) = FallbackPolicy.ThresholdRange(fallback.Rule);
                if (!(threshold >= min && threshold <= max))
                {
                    Add(errors, field, $"must be in [{min}, {max}] for the {fallback.RuleName} rule, got {threshold}");
                }
            }
        }
    }

    private static void Add(Dictionary<string, string[]> errors, string field, string message) => errors[field] = [message];
}
