using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// The sentence embedding ([batch, dimensions]): the head pools and L2-normalises the vector itself
/// (manifest <c>output.normalize: true</c>). Not in the default selection: it runs when named in
/// <c>tasks</c>, for the embeddings APIs and for the examples tasks that read it.
/// </summary>
public sealed class EmbeddingKind : HeadKind<EmbeddingPrediction, EmbeddingResult>
{
    public static EmbeddingKind Instance { get; } = new();

    private EmbeddingKind()
    {
    }

    public override string Name => "embedding";
    public override string WidthField => "output.dimensions";
    public override bool InDefaultSelection => false;

    public override int OutputWidth(TaskDefinition task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.Dimensions ?? 0;
    }

    protected override OutputSettings ReadKindOutput(TaskOutputManifest output, TaskInputKind input, string at)
    {
        if (output.Dimensions is not ({ } dimensions and >= 1))
        {
            throw Invalid($"{at}.output.dimensions", "must be a positive integer (the embedding's length)");
        }

        if (output.Normalize is not true)
        {
            throw Invalid($"{at}.output.normalize", "must be true: the service serves L2-normalised embeddings (the head normalises)");
        }

        if (output.Pooling is not (null or "mean" or "cls"))
        {
            throw Invalid($"{at}.output.pooling", $"unknown pooling '{output.Pooling}' (expected mean | cls)");
        }

        if (input != TaskInputKind.Single)
        {
            throw Invalid($"{at}.input", "an embedding is of one text; input must be single");
        }

        return new OutputSettings([]) { Dimensions = dimensions };
    }

    public override EmbeddingPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment)
    {
        ArgumentNullException.ThrowIfNull(encoded);
        float[] vector = row.ToArray();
        return new EmbeddingPrediction(vector, encoded.Length, encoded.IsTruncated);
    }

    protected override EmbeddingResult Answer(EmbeddingPrediction prediction, double? fallbackThreshold) => new(prediction.Vector);
}

/// <summary>An embedding, with the tokens it was computed from (the embeddings APIs report them).</summary>
public sealed record EmbeddingPrediction(float[] Vector, int Tokens, bool Truncated) : TaskPrediction(Vector)
{
    public override HeadKind Kind => EmbeddingKind.Instance;
}

/// <summary>An embedding task's answer: <c>embedding</c>, the L2-normalised vector.</summary>
public sealed record EmbeddingResult(IReadOnlyList<float> Embedding) : TaskResult;
