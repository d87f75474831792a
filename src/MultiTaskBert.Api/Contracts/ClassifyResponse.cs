using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Contracts;

/// <summary>One input's answers by task, and the model that made them.</summary>
public sealed record ClassifyResponse(string Model, IReadOnlyDictionary<string, TaskResult> Results);
