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
    FallbackInfo? Fallback = null);

/// <summary>A task's fallback: its label, rule, the bundle's threshold and the range a request may override it within.</summary>
public sealed record FallbackInfo(string Label, string Rule, double Threshold, double[] ThresholdRange, IReadOnlyDictionary<string, double>? Selection);

public sealed record TaskMetricsInfo(
    string? Split,
    string? Primary,
    IReadOnlyDictionary<string, double>? Values,
    IReadOnlyDictionary<string, double>? Teacher,
    IReadOnlyDictionary<string, double>? FullFineTuning);
