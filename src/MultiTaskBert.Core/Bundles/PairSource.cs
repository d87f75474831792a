using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// How a pair task is computed (manifest <c>output.source</c>): the joint pass (its head over
/// [CLS] text [SEP] textPair, as without a source), or from the embeddings u and v of the two texts,
/// each computed alone by the bundle's embedding task <see cref="Embedding"/>:
/// z = <see cref="Weights"/> · features(u, v) + <see cref="Bias"/>. The task's own kind answers the
/// output row that z makes: [z] for a regression (one value), [0, z] for a two-label classification
/// (P(second label) = sigmoid(z)), so clients get the answer they got from the joint pass.
/// </summary>
public sealed record PairSource
{
    public const string JointPass = "jointPass";
    public const string Embeddings = "embeddings";

    /// <summary>The features the weights multiply, by name; <c>cosine</c>: u · v of the unit vectors.</summary>
    public static IReadOnlyList<string> FeatureNames { get; } = ["cosine"];

    public required string Way { get; init; }

    /// <summary>The embedding task that embeds both texts (set when <see cref="FromEmbeddings"/>).</summary>
    public string Embedding { get; init; } = "";

    public IReadOnlyList<string> Features { get; init; } = [];
    public IReadOnlyList<double> Weights { get; init; } = [];
    public double Bias { get; init; }

    /// <summary>Informative: what the mapping was fitted on.</summary>
    public PairFitManifest? Fit { get; init; }

    /// <summary>Informative: both ways' dev metrics, by way.</summary>
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? Dev { get; init; }

    public bool FromEmbeddings => Way == Embeddings;

    /// <summary>Validates <paramref name="source"/>, naming fields under <paramref name="at"/> (<c>tasks[i]</c>).</summary>
    public static PairSource Read(PairSourceManifest source, TaskInputKind input, TaskOutputManifest output, string at)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(output);
        string field = $"{at}.output.source";
        if (source.Way is not (JointPass or Embeddings))
        {
            throw Invalid($"{field}.way", $"unknown way '{source.Way}' (expected {JointPass} | {Embeddings})");
        }

        var read = new PairSource { Way = source.Way, Fit = source.Fit, Dev = source.Dev };
        if (!read.FromEmbeddings)
        {
            return read;
        }

        if (input != TaskInputKind.Pair)
        {
            throw Invalid($"{at}.input", "a task computed from two embeddings reads text and textPair; input must be pair");
        }

        if (output.Fallback is not null)
        {
            throw Invalid($"{at}.output.fallback", "a task computed from embeddings has no head distance to fall back on; remove the fallback (the toolkit keeps it under output.source.jointPass)");
        }

        if (output.Temperature is not null)
        {
            throw Invalid($"{at}.output.temperature", "the joint head's softmax temperature does not apply to z, whose logistic was fitted as it is; remove it (the toolkit keeps it under output.source.jointPass)");
        }

        BundleLoader.RequireNonEmpty(source.Embedding ?? "", $"{field}.embedding");
        IReadOnlyList<string> features = source.Features ?? [];
        if (features.Count == 0 || features.Any(f => !FeatureNames.Contains(f)))
        {
            throw Invalid($"{field}.features", $"must list 1 or more of {string.Join(" | ", FeatureNames)}");
        }

        IReadOnlyList<double> weights = source.Weights ?? [];
        if (weights.Count != features.Count || weights.Any(w => !double.IsFinite(w)))
        {
            throw Invalid($"{field}.weights", $"must be {features.Count} finite numbers, one per feature");
        }

        if (source.Bias is not { } bias || !double.IsFinite(bias))
        {
            throw Invalid($"{field}.bias", "must be a finite number");
        }

        return read with { Embedding = source.Embedding!, Features = features, Weights = weights, Bias = bias };
    }

    /// <summary>A task computed from embeddings must output one value or two labels (what a logistic on z answers).</summary>
    public static void RequireServable(TaskDefinition task)
    {
        ArgumentNullException.ThrowIfNull(task);
        if (task.PairSource is { FromEmbeddings: true } && (task.Kind.OutputRank != 2 || task.OutputWidth is not (1 or 2)))
        {
            throw Invalid($"{task.ManifestField}.output.source.way",
                $"a task computed from embeddings outputs one value (regression) or two labels (classification); this {task.Kind.Name} task outputs {task.OutputWidth}");
        }
    }

    /// <summary>Each task computed from embeddings names an embedding task of <paramref name="tasks"/>; else a validation error naming the field.</summary>
    public static void RequireEmbeddingTasks(IReadOnlyList<TaskDefinition> tasks)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        foreach (TaskDefinition task in tasks)
        {
            if (MissingEmbedding(task, tasks) is { } problem)
            {
                throw Invalid($"{task.ManifestField}.output.source.embedding", problem);
            }
        }
    }

    /// <summary>Why <paramref name="task"/>'s embedding task is not among <paramref name="tasks"/>, or null when it is (or the task needs none).</summary>
    public static string? MissingEmbedding(TaskDefinition task, IReadOnlyList<TaskDefinition> tasks)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(tasks);
        if (task.PairSource is not { FromEmbeddings: true } source
            || tasks.Any(t => t.Name == source.Embedding && t.Kind == EmbeddingKind.Instance))
        {
            return null;
        }

        string[] embeddings = [.. tasks.Where(t => t.Kind == EmbeddingKind.Instance).Select(t => t.Name)];
        return $"task '{task.Name}' is computed from the embeddings of task '{source.Embedding}', which the bundle lacks (embedding tasks: {(embeddings.Length == 0 ? "none" : string.Join(", ", embeddings))})";
    }

    /// <summary>The output row of <paramref name="width"/> values (1 or 2) that z makes from the embeddings <paramref name="u"/> and <paramref name="v"/>.</summary>
    public float[] Row(IReadOnlyList<float> u, IReadOnlyList<float> v, int width)
    {
        ArgumentNullException.ThrowIfNull(u);
        ArgumentNullException.ThrowIfNull(v);
        double cosine = 0;
        for (int i = 0; i < u.Count; i++)
        {
            cosine += u[i] * (double)v[i];
        }

        // FeatureNames holds the cosine alone, so every weight multiplies it (Read refuses others).
        double z = Bias + Weights.Sum(w => w * cosine);
        return width == 1 ? [(float)z] : [0f, (float)z];
    }

    private static BundleValidationException Invalid(string field, string problem) => new(BundleLoader.ManifestFileName, field, problem);
}
