using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Core.Engine;

/// <summary>Predictions per input, in input order, and the model that made them.</summary>
public sealed record RequestPredictions(string Model, IReadOnlyList<IReadOnlyDictionary<string, TaskPrediction>> Results);
