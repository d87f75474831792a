using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

/// <summary>A task of the loaded bundle, as <c>GET /tasks</c> lists it.</summary>
public sealed record TaskInfo(
    string Name,
    int Version,
    string Description,
    string Kind,
    string Input,
    IReadOnlyList<string> Labels,
    double[]? Range,
    TaskMetricsInfo? Metrics,
    FallbackInfo? Fallback = null)
{
    /// <summary>Whether a request that names no tasks gets this one (false: a head no better than its majority class, served only by name).</summary>
    public bool ServedByDefault { get; init; } = true;

    /// <summary>Classification: the softmax temperature its scores are computed at (fitted on data the head never trained on).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? Temperature { get; init; }

    /// <summary>Pair tasks whose bundle says so: how the task is computed (the joint pass, or from the two texts' embeddings) and both ways' dev metrics.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public PairSourceInfo? Source { get; init; }
}

/// <summary>
/// How a pair task is computed: <c>way</c> <c>jointPass</c> (its head over text and textPair together) or
/// <c>embeddings</c> (z = weights · features + bias over the embeddings of the two texts by task
/// <c>embedding</c>; a regression answers z, a classification P(second label) = sigmoid(z)), with
/// what the mapping was fitted on and both ways' dev metrics (the better one is served).
/// </summary>
public sealed record PairSourceInfo(
    string Way,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Embedding,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? Features,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<double>? Weights,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Bias,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] PairFitInfo? Fit,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? Dev);

/// <summary>What a pair task's mapping from embeddings was fitted on: split, examples, loss, seed.</summary>
public sealed record PairFitInfo(string? Split, int? Examples, string? Loss, int? Seed);

/// <summary>
/// A task's fallback: its label, rule, the bundle's threshold and the range a request may override it
/// within. For the <c>mahalanobis</c> rule the threshold is the share of in-scope inputs it is meant to
/// turn away; <c>expected</c> gives that share as measured on held-out in-scope examples (with a 95%
/// upper bound) and <c>calibration</c> what it was measured on.
/// </summary>
public sealed record FallbackInfo(string Label, string Rule, double Threshold, double[] ThresholdRange, IReadOnlyDictionary<string, double>? Selection)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, double>? Expected { get; init; }

    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public CalibrationInfo? Calibration { get; init; }
}

/// <summary>What a distance rule's threshold was calibrated on: how many in-scope examples, scored how.</summary>
public sealed record CalibrationInfo(int Examples, string? Method);

public sealed record TaskMetricsInfo(
    string? Split,
    string? Primary,
    IReadOnlyDictionary<string, double>? Values,
    IReadOnlyDictionary<string, double>? Teacher,
    IReadOnlyDictionary<string, double>? FullFineTuning);
