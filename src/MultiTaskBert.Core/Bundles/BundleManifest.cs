using System.Text.Json.Serialization;

namespace MultiTaskBert.Core.Bundles;

// Wire records of manifest.json (docs/bundle-format.md). Structural problems (missing required
// properties, wrong JSON types) are reported by System.Text.Json with a JSON path; semantic rules
// are checked by BundleLoader. Enum-like fields stay strings so that an unknown value gets a
// message that lists the allowed ones.

public sealed record BundleManifest
{
    public required int FormatVersion { get; init; }
    public required string Name { get; init; }
    public required string Version { get; init; }
    public required TokenizerManifest Tokenizer { get; init; }
    public required TrunkManifest Trunk { get; init; }
    public required IReadOnlyList<TaskManifest> Tasks { get; init; }
}

public sealed record TokenizerManifest
{
    /// <summary>WordPiece vocabulary, one token per line; may be gzip-compressed (<c>.gz</c>).</summary>
    public required string VocabFile { get; init; }
    public bool Lowercase { get; init; } = true;
    public bool StripAccents { get; init; } = true;
    public required int MaxSequenceLength { get; init; }
}

public sealed record TrunkManifest
{
    public required string File { get; init; }
    public required string Sha256 { get; init; }
    public required int HiddenSize { get; init; }
    public required int NumLayers { get; init; }
    public required PretrainedManifest Pretrained { get; init; }
    public required TrunkInputNames Inputs { get; init; }
    public required IReadOnlyList<TrunkOutputManifest> Outputs { get; init; }

    /// <summary>
    /// The weight matmuls of the trunk and of the heads' token-level layers run in int8 (toolkit
    /// <c>--int8-matmuls</c>; absent: float). The graphs carry the integer ops, so serving needs nothing
    /// else; only CUDA lacks kernels for them.
    /// </summary>
    public bool Int8Matmuls { get; init; }

    /// <summary>
    /// Optional: the same trunk computing in float16, for CUDA (toolkit <c>bundle add-cuda-trunk</c>):
    /// same inputs and outputs as <see cref="File"/>. Absent in older bundles.
    /// </summary>
    public GraphFileManifest? Float16 { get; init; }
}

/// <summary>An extra graph of a bundle (a CUDA variant): its file and SHA-256. Other members are informative.</summary>
public sealed record GraphFileManifest
{
    public required string File { get; init; }
    public required string Sha256 { get; init; }
}

public sealed record PretrainedManifest
{
    public required string Name { get; init; }
    public required string Fingerprint { get; init; }
    public required int NumLayers { get; init; }
}

public sealed record TrunkInputNames
{
    public required string InputIds { get; init; }
    public required string AttentionMask { get; init; }
    public required string TokenTypeIds { get; init; }
}

public sealed record TrunkOutputManifest
{
    public required int Layer { get; init; }
    public required string Name { get; init; }
}

public sealed record TaskManifest
{
    public required string Name { get; init; }
    public int Version { get; init; } = 1;
    public string Description { get; init; } = "";
    public required string Input { get; init; }
    public required int BranchLayer { get; init; }
    public required TaskOutputManifest Output { get; init; }
    public required HeadManifest Head { get; init; }
    public required string PretrainedFingerprint { get; init; }
    public TaskMetricsManifest? Metrics { get; init; }

    /// <summary>
    /// Whether a request that names no tasks gets this one (absent: true). The toolkit sets it false
    /// for a head whose dev score does not beat its majority class by a significant margin: it is
    /// served when asked by name, never by default. Nullable: the source-generated reader sets every
    /// init property, so an initializer would not survive a manifest without the member.
    /// </summary>
    public bool? ServedByDefault { get; init; }
}

public sealed record TaskOutputManifest
{
    public required string Kind { get; init; }
    public IReadOnlyList<string>? Labels { get; init; }
    public IReadOnlyList<double>? Range { get; init; }
    public IReadOnlyList<string>? Tags { get; init; }

    /// <summary>Tagging only: the CRF to decode with, or null for argmax per word.</summary>
    public CrfManifest? Crf { get; init; }

    /// <summary>Classification only: the out-of-scope answer and the rule that triggers it, or null for none.</summary>
    public FallbackManifest? Fallback { get; init; }

    /// <summary>
    /// Classification only: the probabilities are softmax(logits / temperature), fitted by the
    /// toolkit on examples the head never trained on so that a score means what it says (default 1).
    /// </summary>
    public double? Temperature { get; init; }

    /// <summary>Embedding only: the vector's length (the head output's width).</summary>
    public int? Dimensions { get; init; }

    /// <summary>Embedding only, informative: how tokens are pooled (<c>mean</c>).</summary>
    public string? Pooling { get; init; }

    /// <summary>Embedding only: whether the head L2-normalises its vectors (the service requires it).</summary>
    public bool? Normalize { get; init; }

    /// <summary>Examples only: the embedding task whose head the examples were embedded with.</summary>
    public string? Embedding { get; init; }

    /// <summary>Examples only: the per-label centroid file (float32 little-endian, labels × dimensions) and its SHA-256.</summary>
    public GraphFileManifest? Centroids { get; init; }

    /// <summary>Examples only, informative: how many examples each centroid averages.</summary>
    public IReadOnlyDictionary<string, int>? ExampleCounts { get; init; }

    /// <summary>
    /// Pair regression and two-label classification tasks: which way the task is computed, the joint
    /// pass or from the two texts' embeddings (toolkit <c>bundle pair-source</c>); absent: the joint pass.
    /// </summary>
    public PairSourceManifest? Source { get; init; }
}

/// <summary>
/// How a pair task is computed (docs/bundle-format.md, "Pair tasks from embeddings"): <c>way</c>
/// <c>jointPass</c> (the head over [CLS] text [SEP] textPair) or <c>embeddings</c>: z = weights ·
/// features(u, v) + bias over the embeddings u, v of the two texts by task <c>embedding</c>. <c>fit</c>
/// and <c>dev</c> (both ways' dev metrics) are informative.
/// </summary>
public sealed record PairSourceManifest
{
    public required string Way { get; init; }
    public string? Embedding { get; init; }
    public IReadOnlyList<string>? Features { get; init; }
    public IReadOnlyList<double>? Weights { get; init; }
    public double? Bias { get; init; }
    public PairFitManifest? Fit { get; init; }
    public IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? Dev { get; init; }
}

/// <summary>Informative: what the mapping of a pair task from embeddings was fitted on.</summary>
public sealed record PairFitManifest
{
    public string? Split { get; init; }
    public int? Examples { get; init; }
    public string? Loss { get; init; }
    public int? Seed { get; init; }
}

/// <summary>
/// A classification task's fallback: <c>label</c> is answered when <c>rule</c>'s measure of the head
/// output is below <c>threshold</c>. <c>selection</c> is informative (how the toolkit chose the threshold on dev).
/// </summary>
public sealed record FallbackManifest
{
    public required string Label { get; init; }
    public required string Rule { get; init; }
    public required double Threshold { get; init; }
    public IReadOnlyDictionary<string, double>? Selection { get; init; }

    /// <summary>
    /// Rule <c>mahalanobis</c>: how the head's out-of-domain distance (<c>head.outOfDomain</c>) maps
    /// to the share of in-scope calibration examples at least as far (a p-value), and what that
    /// share is expected to be on held-out in-scope data at the threshold.
    /// </summary>
    public DistanceCalibrationManifest? Calibration { get; init; }

    /// <summary>Informative: the in-scope rejection rate expected at the threshold and its 95% upper bound.</summary>
    public IReadOnlyDictionary<string, double>? Expected { get; init; }
}

/// <summary>
/// A head graph's out-of-domain distance: <c>output</c> ([batch] or [batch, 1]) is each row's squared
/// Mahalanobis distance of its hidden states at trunk layer <c>layer</c>, mean-pooled, to the nearest
/// class of the task's training data. When <c>layer</c> is not the task's branch layer the graph reads
/// those hidden states through its input <c>hiddenStates</c>.
/// </summary>
public sealed record OutOfDomainManifest
{
    public required string Output { get; init; }
    public required int Layer { get; init; }
    public string? HiddenStates { get; init; }
}

/// <summary>
/// Distances (ascending) and the share of in-scope calibration examples whose distance is at least
/// each one (descending, in (0, 1]); in between the service interpolates log p linearly, beyond the
/// last point it extends the last segment's slope.
/// </summary>
public sealed record DistanceCalibrationManifest
{
    public IReadOnlyList<double>? Distances { get; init; }
    public IReadOnlyList<double>? PValues { get; init; }

    /// <summary>Informative: how many in-scope examples were scored, and how (e.g. "5-fold cross-fit on train").</summary>
    public int Examples { get; init; }
    public string? Method { get; init; }
}

/// <summary>A linear-chain CRF: transitions[from][to], start[tag], end[tag] (float32 values).</summary>
public sealed record CrfManifest
{
    public IReadOnlyList<IReadOnlyList<float>>? Transitions { get; init; }
    public IReadOnlyList<float>? Start { get; init; }
    public IReadOnlyList<float>? End { get; init; }
}

public sealed record HeadManifest
{
    public required string File { get; init; }
    public required string Sha256 { get; init; }
    public int NumLayers { get; init; }
    public required HeadInputNames Inputs { get; init; }
    public required string Output { get; init; }

    /// <summary>
    /// Optional: the graph's out-of-domain distance, which the <c>mahalanobis</c> fallback rule reads.
    /// </summary>
    public OutOfDomainManifest? OutOfDomain { get; init; }

    /// <summary>
    /// Optional: the head with its int8 matmuls as float matmuls (same inputs and output), served
    /// beside <see cref="TrunkManifest.Float16"/>, since CUDA has no kernel for the integer ones.
    /// </summary>
    [JsonPropertyName("float")]
    public GraphFileManifest? FloatGraph { get; init; }
}

public sealed record HeadInputNames
{
    public required string HiddenStates { get; init; }

    /// <summary>Null for heads that do not look at the mask (e.g. a [CLS]-only linear head).</summary>
    public string? AttentionMask { get; init; }
}

/// <summary>Informative metrics measured by the toolkit; passed through to <c>GET /tasks</c>.</summary>
public sealed record TaskMetricsManifest
{
    public string? Split { get; init; }
    public string? Primary { get; init; }
    public IReadOnlyDictionary<string, double>? Values { get; init; }
    public IReadOnlyDictionary<string, double>? Teacher { get; init; }
    public IReadOnlyDictionary<string, double>? FullFineTuning { get; init; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    ReadCommentHandling = System.Text.Json.JsonCommentHandling.Skip,
    AllowTrailingCommas = true,
    RespectNullableAnnotations = true,
    RespectRequiredConstructorParameters = true)]
[JsonSerializable(typeof(BundleManifest))]
[JsonSerializable(typeof(TaskManifest))]
[JsonSerializable(typeof(TrunkManifest))]
[JsonSerializable(typeof(TokenizerManifest))]
internal sealed partial class BundleManifestJsonContext : JsonSerializerContext;
