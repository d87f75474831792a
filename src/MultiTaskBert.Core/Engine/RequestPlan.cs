using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Which tasks run for which input, and the trunk rows that serve them. A single-sentence task
/// always reads <c>[CLS] text [SEP]</c> and a pair task <c>[CLS] text [SEP] textPair [SEP]</c>, so an
/// input that needs both gets two rows; all rows share one trunk pass.
/// </summary>
internal sealed class RequestPlan
{
    private RequestPlan(IReadOnlyList<PlanRow> rows, IReadOnlyList<TaskDefinition>[] tasksPerInput, IReadOnlyList<TaskDefinition> tasks)
    {
        Rows = rows;
        TasksPerInput = tasksPerInput;
        Tasks = tasks;
    }

    public IReadOnlyList<PlanRow> Rows { get; }

    /// <summary>Tasks to answer, per input index.</summary>
    public IReadOnlyList<TaskDefinition>[] TasksPerInput { get; }

    /// <summary>Distinct tasks over the batch: each head runs once.</summary>
    public IReadOnlyList<TaskDefinition> Tasks { get; }

    public int RowOf(int inputIndex, TaskInputKind kind)
    {
        for (int i = 0; i < Rows.Count; i++)
        {
            if (Rows[i].InputIndex == inputIndex && Rows[i].Kind == kind)
            {
                return i;
            }
        }

        throw new InvalidOperationException($"No {kind} row for input {inputIndex}.");
    }

    public static RequestPlan Create(BundleSnapshot bundle, IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? taskNames, RequestFieldNames fields)
    {
        if (inputs.Count == 0)
        {
            throw new InvalidClassifyRequestException(RequestFieldNames.Inputs, "at least one input is required");
        }

        for (int i = 0; i < inputs.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(inputs[i].Text))
            {
                throw new InvalidClassifyRequestException(fields.Input(i, "text"), "must not be empty");
            }

            if (inputs[i].TextPair is { } pair && string.IsNullOrWhiteSpace(pair))
            {
                throw new InvalidClassifyRequestException(fields.Input(i, "textPair"), "must not be empty when present");
            }
        }

        var tasksPerInput = new IReadOnlyList<TaskDefinition>[inputs.Count];
        if (taskNames is null)
        {
            // Every task served by default whose input kind fits: single-sentence tasks without a pair,
            // pair tasks with one; a head no better than its majority class and kinds left out of the
            // default selection (embeddings) only when named.
            for (int i = 0; i < inputs.Count; i++)
            {
                TaskInputKind kind = inputs[i].IsPair ? TaskInputKind.Pair : TaskInputKind.Single;
                tasksPerInput[i] = [.. bundle.Tasks.Where(t => t.Input == kind && t.ServedByDefault && t.Kind.InDefaultSelection)];
            }
        }
        else
        {
            IReadOnlyList<TaskDefinition> requested = ResolveTasks(bundle, taskNames);
            for (int i = 0; i < inputs.Count; i++)
            {
                if (!inputs[i].IsPair && requested.FirstOrDefault(t => t.Input == TaskInputKind.Pair) is { } pairTask)
                {
                    throw new InvalidClassifyRequestException(fields.Input(i, "textPair"), $"task '{pairTask.Name}' classifies sentence pairs and needs textPair");
                }

                tasksPerInput[i] = requested;
            }
        }

        return ForTasks(tasksPerInput);
    }

    /// <summary>The rows that serve already resolved tasks, per input.</summary>
    public static RequestPlan ForTasks(IReadOnlyList<TaskDefinition>[] tasksPerInput)
    {
        var rows = new List<PlanRow>();
        for (int i = 0; i < tasksPerInput.Length; i++)
        {
            foreach (TaskInputKind kind in tasksPerInput[i].Select(t => t.Input).Distinct().Order())
            {
                rows.Add(new PlanRow(i, kind));
            }
        }

        TaskDefinition[] distinct = [.. tasksPerInput.SelectMany(t => t).Distinct()];
        return new RequestPlan(rows, tasksPerInput, distinct);
    }

    private static List<TaskDefinition> ResolveTasks(BundleSnapshot bundle, IReadOnlyList<string> taskNames)
    {
        if (taskNames.Count == 0)
        {
            throw new InvalidClassifyRequestException(RequestFieldNames.Tasks, "must name at least one task when present");
        }

        var resolved = new List<TaskDefinition>(taskNames.Count);
        for (int i = 0; i < taskNames.Count; i++)
        {
            string name = taskNames[i];
            TaskDefinition task = bundle.Heads.TryGetValue(name ?? "", out var head)
                ? head.Task
                : throw new InvalidClassifyRequestException(RequestFieldNames.Task(i),
                    $"unknown task '{name}' (known: {string.Join(", ", bundle.Tasks.Select(t => t.Name))})");
            if (resolved.Contains(task))
            {
                throw new InvalidClassifyRequestException(RequestFieldNames.Task(i), $"task '{name}' is listed twice");
            }

            resolved.Add(task);
        }

        return resolved;
    }
}

/// <summary>One trunk row: input <see cref="InputIndex"/> encoded as a single sentence or as a pair.</summary>
internal readonly record struct PlanRow(int InputIndex, TaskInputKind Kind);
