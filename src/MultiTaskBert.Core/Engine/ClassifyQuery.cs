namespace MultiTaskBert.Core.Engine;

/// <summary>What a caller asks of the engine.</summary>
/// <param name="Inputs">The inputs, in answer order.</param>
/// <param name="Tasks">The tasks to run (null: every task served by default that fits).</param>
/// <param name="FallbackThresholds">The request's own fallback thresholds by task (null: the bundle's); checked against the snapshot the request runs on.</param>
/// <param name="Fields">How the caller's body names the fields, for errors (null: <see cref="RequestFieldNames.Batch"/>).</param>
public sealed record ClassifyQuery(
    IReadOnlyList<ClassifyInput> Inputs,
    IReadOnlyList<string>? Tasks,
    IReadOnlyDictionary<string, double>? FallbackThresholds = null,
    RequestFieldNames? Fields = null)
{
    public RequestFieldNames Fields { get; init; } = Fields ?? RequestFieldNames.Batch;
}
