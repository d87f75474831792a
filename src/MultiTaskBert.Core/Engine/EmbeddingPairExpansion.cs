using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Pair tasks computed from two embeddings (<see cref="PairSource"/>) inside one request: every input
/// that asks one gets two more inputs, its text and its textPair, each asking the embedding task
/// alone, so both embeddings go through the micro-batcher and the trunk like any input, in the
/// request's snapshot. <see cref="Fold"/> turns them into the pair task's output row, which the
/// task's own kind answers, and gives back one result per original input in its task order.
/// </summary>
internal sealed class EmbeddingPairExpansion
{
    private readonly IReadOnlyList<TaskDefinition>[] _tasksPerInput;
    private readonly (int Text, int Pair)[] _embedded;

    private EmbeddingPairExpansion(IReadOnlyList<TaskDefinition>[] tasksPerInput, (int Text, int Pair)[] embedded)
    {
        _tasksPerInput = tasksPerInput;
        _embedded = embedded;
    }

    /// <summary>
    /// The inputs and plan to run: unchanged (and no expansion) when no planned task is computed from
    /// embeddings; else the original inputs without those tasks, then two embedded inputs per input that asked one.
    /// </summary>
    public static (IReadOnlyList<ClassifyInput> Inputs, RequestPlan Plan, EmbeddingPairExpansion? Expansion) Expand(
        BundleSnapshot bundle, IReadOnlyList<ClassifyInput> inputs, RequestPlan plan)
    {
        if (!plan.Tasks.Any(FromEmbeddings))
        {
            return (inputs, plan, null);
        }

        List<ClassifyInput> expanded = [.. inputs];
        // The original inputs' tasks first, then the embedded inputs' in the order they were appended.
        List<IReadOnlyList<TaskDefinition>> tasks = [], embeddedTasks = [];
        var embedded = new (int Text, int Pair)[inputs.Count];
        for (int i = 0; i < inputs.Count; i++)
        {
            IReadOnlyList<TaskDefinition> asked = plan.TasksPerInput[i];
            tasks.Add([.. asked.Where(t => !FromEmbeddings(t))]);
            TaskDefinition[] embeddings = [.. asked.Where(FromEmbeddings).Select(t => t.PairSource!.Embedding).Distinct()
                .Select(name => bundle.Tasks.First(t => t.Name == name))];
            if (embeddings.Length == 0)
            {
                embedded[i] = (-1, -1);
                continue;
            }

            embedded[i] = (expanded.Count, expanded.Count + 1);
            expanded.Add(new ClassifyInput(inputs[i].Text));
            expanded.Add(new ClassifyInput(inputs[i].TextPair!));
            embeddedTasks.Add(embeddings);
            embeddedTasks.Add(embeddings);
        }

        return (expanded, RequestPlan.ForTasks([.. tasks, .. embeddedTasks]), new EmbeddingPairExpansion([.. plan.TasksPerInput], embedded));
    }

    /// <summary>One result per original input: its own tasks' predictions and the pair tasks' from the two embeddings.</summary>
    public RequestPredictions Fold(RequestPredictions expanded, PreparedRequest request)
    {
        var results = new IReadOnlyDictionary<string, TaskPrediction>[_tasksPerInput.Length];
        for (int i = 0; i < results.Length; i++)
        {
            var predictions = new Dictionary<string, TaskPrediction>(_tasksPerInput[i].Count, StringComparer.Ordinal);
            foreach (TaskDefinition task in _tasksPerInput[i])
            {
                predictions[task.Name] = FromEmbeddings(task)
                    ? Predict(task, expanded, request, _embedded[i])
                    : expanded.Results[i][task.Name];
            }

            results[i] = predictions;
        }

        return expanded with { Results = results };
    }

    private static TaskPrediction Predict(TaskDefinition task, RequestPredictions expanded, PreparedRequest request, (int Text, int Pair) embedded)
    {
        PairSource source = task.PairSource!;
        TaskPrediction u = expanded.Results[embedded.Text][source.Embedding];
        TaskPrediction v = expanded.Results[embedded.Pair][source.Embedding];
        if ((u as TaskFailure ?? v as TaskFailure) is { } failure)
        {
            return new TaskFailure(task.Kind, failure.Title, $"the embedding task '{source.Embedding}' it is computed from failed: {failure.Detail}");
        }

        EncodedInput text = request.Encoded[request.Plan.RowOf(embedded.Text, TaskInputKind.Single)];
        return task.Kind.Predict(task, source.Row(u.Logits, v.Logits, task.OutputWidth), outOfDomainDistance: null, text, alignment: null);
    }

    private static bool FromEmbeddings(TaskDefinition task) => task.PairSource is { FromEmbeddings: true };
}
