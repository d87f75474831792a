using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Classify one utterance (or utterance pair).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ClassifyRequest
{
    /// <summary>The utterance.</summary>
    /// <example>the movie was a delight from start to finish</example>
    public string? Text { get; init; }

    /// <summary>Second sentence, for pair tasks (paraphrase, entailment, similarity).</summary>
    public string? TextPair { get; init; }

    /// <summary>Tasks to run; default: every task whose input kind fits (single without textPair, pair with it).</summary>
    public IReadOnlyList<string>? Tasks { get; init; }

    /// <summary>Per task with a fallback (<c>GET /tasks</c>): this request's threshold instead of the bundle's, within the rule's range.</summary>
    public IReadOnlyDictionary<string, double>? FallbackThresholds { get; init; }
}

/// <summary>One input of a batch.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BatchInput
{
    public string? Text { get; init; }
    public string? TextPair { get; init; }
}

/// <summary>Classify several inputs in one trunk pass.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ClassifyBatchRequest
{
    public IReadOnlyList<BatchInput?>? Inputs { get; init; }

    /// <summary>Tasks to run for every input; default: per input, every task whose input kind fits.</summary>
    public IReadOnlyList<string>? Tasks { get; init; }

    /// <summary>Per task with a fallback (<c>GET /tasks</c>): this request's threshold instead of the bundle's, within the rule's range.</summary>
    public IReadOnlyDictionary<string, double>? FallbackThresholds { get; init; }
}

public sealed record ClassifyResponse(string Model, IReadOnlyDictionary<string, TaskResult> Results);

public sealed record ClassifyBatchResponse(string Model, IReadOnlyList<IReadOnlyDictionary<string, TaskResult>> Results);

/// <summary>
/// One task's answer. Classification: <c>label</c>, <c>score</c>, <c>scores</c> (and <c>fallback</c>
/// when the task's out-of-scope rule fired: <c>label</c> is then the fallback label); regression:
/// <c>value</c>; tagging: <c>tags</c> (one per whitespace word) and <c>entities</c>. Absent members are omitted.
/// </summary>
public sealed record TaskResult
{
    public string? Label { get; init; }

    /// <summary>The model's top class probability (of <c>fallback.topLabel</c> when the fallback fired).</summary>
    public double? Score { get; init; }
    public IReadOnlyDictionary<string, double>? Scores { get; init; }
    public FallbackResult? Fallback { get; init; }
    public double? Value { get; init; }
    public IReadOnlyList<WordTagResult>? Tags { get; init; }
    public IReadOnlyList<EntityResult>? Entities { get; init; }
}

/// <summary>
/// Present when a task answered its fallback label: the model's own top label, the rule, the rule's
/// measure of this output and the threshold it fell below.
/// </summary>
public sealed record FallbackResult(string TopLabel, string Rule, double Value, double Threshold);

/// <summary>A whitespace word of the request's text and its BIO tag.</summary>
public sealed record WordTagResult(string Word, string Tag);

/// <summary>A slot; <c>text</c> is the original substring <c>[start, end)</c> (character offsets, end exclusive).</summary>
public sealed record EntityResult(string Type, string Text, int Start, int End);

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
    FallbackInfo? Fallback = null);

/// <summary>A task's fallback: its label, rule, the bundle's threshold and the range a request may override it within.</summary>
public sealed record FallbackInfo(string Label, string Rule, double Threshold, double[] ThresholdRange, IReadOnlyDictionary<string, double>? Selection);

public sealed record TaskMetricsInfo(
    string? Split,
    string? Primary,
    IReadOnlyDictionary<string, double>? Values,
    IReadOnlyDictionary<string, double>? Teacher,
    IReadOnlyDictionary<string, double>? FullFineTuning);

public sealed record TasksResponse(string Model, IReadOnlyList<TaskInfo> Tasks);
