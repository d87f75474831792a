using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Tagging;

namespace MultiTaskBert.Core.Bundles;

public enum TaskInputKind
{
    /// <summary>One sentence: <c>text</c>.</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1720", Justification = "Mirrors the manifest value \"single\".")]
    Single,

    /// <summary>A sentence pair: <c>text</c> and <c>textPair</c>.</summary>
    Pair,
}

/// <summary>Closed range a regression head's value is clamped to.</summary>
public readonly record struct ValueRange(double Min, double Max)
{
    public double Clamp(double value) => Math.Clamp(value, Min, Max);
}

/// <summary>A validated task of a bundle: what its head consumes and how its output reads.</summary>
public sealed record TaskDefinition
{
    public required string Name { get; init; }
    public required int Version { get; init; }
    public required string Description { get; init; }
    public required TaskInputKind Input { get; init; }

    /// <summary>Where the task stands in the manifest, <c>tasks[i]</c>: the prefix of the fields its errors name.</summary>
    public required string ManifestField { get; init; }

    /// <summary>The head's kind (manifest <c>output.kind</c>): everything that differs between kinds is asked of it.</summary>
    public required HeadKind Kind { get; init; }

    /// <summary>Trunk layer whose hidden states the head consumes (1-based).</summary>
    public required int BranchLayer { get; init; }

    /// <summary>Class labels (classification) or BIO tags (tagging), in head-output order; empty for regression.</summary>
    public required IReadOnlyList<string> Labels { get; init; }

    /// <summary>Set for tagging tasks decoded with a CRF (null: argmax per word).</summary>
    public CrfParameters? Crf { get; init; }

    /// <summary>Set for classification tasks that answer a fallback label when the head is unsure.</summary>
    public FallbackPolicy? Fallback { get; init; }

    /// <summary>Classification: the probabilities are softmax(logits / <see cref="Temperature"/>).</summary>
    public double Temperature { get; init; } = 1;

    /// <summary>Whether a request that names no tasks gets this one (manifest <c>servedByDefault</c>).</summary>
    public bool ServedByDefault { get; init; } = true;

    /// <summary>Set for regression tasks.</summary>
    public ValueRange? Range { get; init; }

    /// <summary>Set for embedding tasks: the vector's length.</summary>
    public int? Dimensions { get; init; }

    /// <summary>Set for examples tasks: the label centroids and the fallback below a cosine.</summary>
    public ExamplesModel? Examples { get; init; }

    /// <summary>Set for pair tasks whose manifest says how they are computed (<c>output.source</c>): from two embeddings, or the joint pass.</summary>
    public PairSource? PairSource { get; init; }

    /// <summary>Width of the head output's last axis that the manifest promises.</summary>
    public int OutputWidth => Kind.OutputWidth(this);

    /// <summary>The manifest field that promises <see cref="OutputWidth"/>, e.g. <c>tasks[2].output.labels</c>.</summary>
    public string OutputWidthField => $"{ManifestField}.{Kind.WidthField}";

    public required HeadGraph Head { get; init; }
    public TaskMetricsManifest? Metrics { get; init; }

    /// <summary>The trunk layers the head reads: its branch layer, and the one its out-of-domain distance pools when that differs.</summary>
    public IEnumerable<int> TrunkLayers => Head.OutOfDomain is { } d && d.Layer != BranchLayer ? [BranchLayer, d.Layer] : [BranchLayer];
}

/// <summary>
/// A head ONNX graph and its declared I/O names (<paramref name="AttentionMaskInput"/> null: the head
/// takes no mask). <paramref name="FloatVariant"/>: its float variant served with the float16 trunk, if any.
/// </summary>
public sealed record HeadGraph(
    string RelativePath,
    string FullPath,
    string HiddenStatesInput,
    string? AttentionMaskInput,
    string Output,
    string ManifestField,
    OutOfDomainGraph? OutOfDomain,
    GraphFile? FloatVariant = null)
{
    /// <summary>This head's graph to serve: the float variant beside a float16 trunk when the bundle has one.</summary>
    public GraphFile For(bool float16Graphs) =>
        float16Graphs && FloatVariant is { } variant ? variant : new GraphFile(RelativePath, FullPath);
}

/// <summary>
/// A head's out-of-domain distance output and the trunk layer it reads (<paramref name="HiddenStatesInput"/>:
/// the graph input that takes that layer, null when it is the branch layer and the head's own input serves).
/// </summary>
public sealed record OutOfDomainGraph(string Output, int Layer, string? HiddenStatesInput);

/// <summary>A graph file: its path as the manifest names it and on disk.</summary>
public sealed record GraphFile(string RelativePath, string FullPath);
