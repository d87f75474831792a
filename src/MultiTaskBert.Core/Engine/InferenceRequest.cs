namespace MultiTaskBert.Core.Engine;

/// <summary>One request of a multi-request call: its inputs and its task selection (null = every task that fits).</summary>
public sealed record InferenceRequest(IReadOnlyList<ClassifyInput> Inputs, IReadOnlyList<string>? Tasks = null);
