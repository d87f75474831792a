using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Each input's answers by task, in input order, and the model that made them.</summary>
public sealed record ClassifyBatchResponse(string Model, IReadOnlyList<IReadOnlyDictionary<string, TaskResult>> Results);
