using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Engine results and bundle metadata → wire DTOs.</summary>
internal static class ContractMapper
{
    public static IReadOnlyDictionary<string, TaskResult> ToResults(IReadOnlyDictionary<string, TaskPrediction> predictions) =>
        predictions.ToDictionary(p => p.Key, p => ToResult(p.Value), StringComparer.Ordinal);

    public static TaskResult ToResult(TaskPrediction prediction) => prediction switch
    {
        ClassificationPrediction c => new TaskResult { Label = c.Label, Score = c.Score, Scores = c.Scores },
        RegressionPrediction r => new TaskResult { Value = r.Value },
        TaggingPrediction t => new TaskResult
        {
            Tags = [.. t.Words.Select(w => new WordTagResult(w.Word, w.Tag))],
            Entities = [.. t.Entities.Select(e => new EntityResult(e.Type, e.Text, e.Start, e.End))],
        },
        _ => throw new InvalidOperationException($"Unhandled prediction {prediction.GetType().Name}."),
    };

    public static TaskInfo ToTaskInfo(TaskDefinition task) => new(
        task.Name,
        task.Version,
        task.Description,
        task.OutputKind.ToString().ToLowerInvariant(),
        task.Input.ToString().ToLowerInvariant(),
        task.Labels,
        task.Range is { } r ? [r.Min, r.Max] : null,
        task.Metrics is { } m ? new TaskMetricsInfo(m.Split, m.Primary, m.Values, m.Teacher, m.FullFineTuning) : null);
}
