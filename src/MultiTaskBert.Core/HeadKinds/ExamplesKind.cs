using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// A task defined by example utterances: no head of its own; it reads its embedding task's head
/// (the manifest entry's <c>head</c> is that head, which the engine runs once for both) and answers
/// the label of the nearest centroid, like a classification task: <c>scores</c> are the softmax of
/// the cosines × <see cref="CosineScale"/>, and the fallback label when the nearest cosine is below
/// the threshold (leave-one-out on the examples, chosen when the task was made).
/// </summary>
public sealed class ExamplesKind : HeadKind<ExamplesPrediction, ClassificationResult>
{
    /// <summary>The fallback's rule name: the cosine to the nearest centroid.</summary>
    public const string CosineRule = "cosine";

    /// <summary>Softmax scale of the cosines (the scale the embedding was trained with, contrastively).</summary>
    public const double CosineScale = 20.0;

    public static ExamplesKind Instance { get; } = new();

    private ExamplesKind()
    {
    }

    public override string Name => "examples";
    public override string WidthField => "output.centroids.file";
    public override bool HasFallback => true;

    public override int OutputWidth(TaskDefinition task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.Examples?.Dimensions ?? 0;
    }

    protected override OutputSettings ReadKindOutput(TaskOutputManifest output, TaskInputKind input, string at)
    {
        IReadOnlyList<string> labels = RequireLabels(output.Labels, $"{at}.output.labels", minimum: 2);
        if (output.Centroids is null)
        {
            throw Invalid($"{at}.output.centroids", "is required: the file of the label centroids and its SHA-256");
        }

        if (input != TaskInputKind.Single)
        {
            throw Invalid($"{at}.input", "examples are single texts; input must be single");
        }

        return new OutputSettings(labels) { ExamplesFallback = output.Fallback is { } f ? ReadFallback(f, $"{at}.output.fallback") : null };
    }

    public override ExamplesPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment)
    {
        ArgumentNullException.ThrowIfNull(task);
        ExamplesModel model = task.Examples ?? throw new InvalidOperationException($"Task '{task.Name}' is an examples task without centroids.");
        var cosines = new double[model.Labels];
        for (int label = 0; label < cosines.Length; label++)
        {
            cosines[label] = Dot(row, model.Centroid(label));
        }

        int best = Numerics.ArgMax<double>(cosines);
        double[] probabilities = Numerics.Softmax([.. cosines.Select(c => (float)(c * CosineScale))]);
        var scores = new Dictionary<string, double>(cosines.Length, StringComparer.Ordinal);
        for (int i = 0; i < cosines.Length; i++)
        {
            scores[task.Labels[i]] = probabilities[i];
        }

        return new ExamplesPrediction(task.Labels[best], probabilities[best], scores, cosines[best], model.Fallback, row.ToArray());
    }

    protected override ClassificationResult Answer(ExamplesPrediction prediction, double? fallbackThreshold)
    {
        if (prediction.Fallback is not { } fallback)
        {
            return new ClassificationResult(prediction.Label, prediction.Score, prediction.Scores);
        }

        double threshold = fallbackThreshold ?? fallback.Threshold;
        return prediction.Cosine < threshold
            ? new ClassificationResult(fallback.Label, prediction.Score, prediction.Scores, new FallbackResult(prediction.Label, CosineRule, prediction.Cosine, threshold))
            : new ClassificationResult(prediction.Label, prediction.Score, prediction.Scores);
    }

    private static double Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++)
        {
            sum += a[i] * (double)b[i];
        }

        return sum;
    }

    private static ExamplesFallback ReadFallback(FallbackManifest fallback, string field)
    {
        BundleLoader.RequireNonEmpty(fallback.Label, $"{field}.label");
        if (!string.Equals(fallback.Rule, CosineRule, StringComparison.Ordinal))
        {
            throw Invalid($"{field}.rule", $"unknown rule '{fallback.Rule}' for an examples task (expected {CosineRule})");
        }

        if (!ExamplesFallback.InRange(fallback.Threshold))
        {
            throw Invalid($"{field}.threshold", $"must be a cosine in [-1, 1], not {fallback.Threshold}");
        }

        return new ExamplesFallback(fallback.Label, fallback.Threshold, fallback.Selection);
    }
}

/// <summary>An examples task's fallback: <see cref="Label"/> when the nearest centroid's cosine is below <see cref="Threshold"/>.</summary>
public sealed record ExamplesFallback(string Label, double Threshold, IReadOnlyDictionary<string, double>? Selection)
{
    public const double MinThreshold = -1;
    public const double MaxThreshold = 1;

    /// <summary>Whether <paramref name="threshold"/> is a cosine (NaN is not).</summary>
    public static bool InRange(double threshold) => threshold >= MinThreshold && threshold <= MaxThreshold;
}

/// <summary>An examples task as served: one L2-normalised centroid per label (row-major) and its fallback.</summary>
public sealed class ExamplesModel(float[] centroids, int labels, ExamplesFallback? fallback)
{
    public int Labels { get; } = labels;
    public int Dimensions { get; } = centroids.Length / labels;
    public ExamplesFallback? Fallback { get; } = fallback;

    public ReadOnlySpan<float> Centroid(int label) => centroids.AsSpan(label * Dimensions, Dimensions);
}

/// <summary>An examples prediction: the nearest centroid's label, the scores and its cosine.</summary>
public sealed record ExamplesPrediction(
    string Label, double Score, IReadOnlyDictionary<string, double> Scores, double Cosine, ExamplesFallback? Fallback, IReadOnlyList<float> Logits)
    : TaskPrediction(Logits)
{
    public override HeadKind Kind => ExamplesKind.Instance;
}
