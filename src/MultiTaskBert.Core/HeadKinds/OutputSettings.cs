using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// A task's validated manifest output section, as <see cref="HeadKind.ReadOutput"/> returns it:
/// labels or tags in head-output order (empty when the kind has none) and the kind's own settings.
/// </summary>
public sealed record OutputSettings(IReadOnlyList<string> Labels)
{
    public ValueRange? Range { get; init; }
    public CrfParameters? Crf { get; init; }
    public FallbackPolicy? Fallback { get; init; }

    /// <summary>Classification: softmax temperature (1 = the logits as they are).</summary>
    public double Temperature { get; init; } = 1;

    public int? Dimensions { get; init; }

    /// <summary>Examples tasks: the fallback read from the manifest; the centroids are read from their file by the loader.</summary>
    public ExamplesFallback? ExamplesFallback { get; init; }
}
