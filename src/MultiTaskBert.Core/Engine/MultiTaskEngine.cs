using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Serves many tasks from one trunk: a batch is tokenized, padded to its longest member, run
/// through the trunk once (only the branch layers needed), then through every requested head
/// concurrently. Batch-oriented so that cross-request micro-batching can sit in front of it.
/// Runs the snapshot in service (<see cref="SnapshotHolder"/>); what is in service is the
/// registry's business (<see cref="Registry.BundleRegistry"/>).
/// </summary>
public sealed class MultiTaskEngine
{
    private readonly EngineMetrics _metrics;

    public MultiTaskEngine(SnapshotHolder snapshots, EngineMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(metrics);
        Snapshots = snapshots;
        _metrics = metrics;
    }

    /// <summary>The snapshot in service, or null before the first load finished (including warm-up).</summary>
    public LoadedBundle? Current => Snapshots.Current;

    public bool IsReady => Current is not null;

    /// <summary>Where the snapshots this engine runs are leased from.</summary>
    internal SnapshotHolder Snapshots { get; }

    public async Task<ClassifyBatchResult> ClassifyAsync(IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? tasks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        LoadedBundle bundle = Snapshots.Lease();
        try
        {
            return await ClassifyAsync(bundle, inputs, tasks, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            bundle.ReleaseLease();
        }
    }

    /// <summary>
    /// Serves several requests, each with its own inputs and task selection, with shared trunk
    /// passes (one per input kind present) and each head run once over the rows of its kind.
    /// Every request gets exactly its own results. A request the engine cannot serve throws
    /// <see cref="InvalidClassifyRequestException"/> for the whole call; the micro-batcher
    /// validates each request on its own before batching.
    /// </summary>
    public async Task<IReadOnlyList<ClassifyBatchResult>> ClassifyManyAsync(IReadOnlyList<InferenceRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        LoadedBundle bundle = Snapshots.Lease();
        try
        {
            PreparedRequest[] prepared = [.. requests.Select(r => Prepare(bundle, r.Inputs, r.Tasks))];
            return await RunAsync(bundle, prepared, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            bundle.ReleaseLease();
        }
    }

    /// <summary>Validates and tokenizes one request against a snapshot (on the caller's thread).</summary>
    internal static PreparedRequest Prepare(LoadedBundle bundle, IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? tasks)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        BatchPlan plan = BatchPlan.Create(bundle, inputs, tasks);
        EncodedInput[] encoded = [.. plan.Rows.Select(r => bundle.Encoder.Encode(inputs[r.InputIndex].Text,
            r.Kind == TaskInputKind.Pair ? inputs[r.InputIndex].TextPair : null))];
        // Per-token kinds (tagging) read words of the original text; align them here, once per
        // input, so the batch thread only decodes.
        var alignments = new WordAlignment?[inputs.Count];
        for (int input = 0; input < inputs.Count; input++)
        {
            if (plan.TasksPerInput[input].Any(t => t.Kind.NeedsWordAlignment))
            {
                EncodedInput single = encoded[plan.RowOf(input, TaskInputKind.Single)];
                alignments[input] = WordAlignment.Create(inputs[input].Text, single.Length, bundle.Encoder.CountPieces);
            }
        }

        return new PreparedRequest(bundle, inputs.Count, plan, encoded, alignments);
    }

    /// <summary>
    /// One inference over <paramref name="tasks"/> of a snapshot not yet in service, so that its
    /// new sessions are loaded and fail (if they do) before it serves.
    /// </summary>
    internal Task WarmUpAsync(LoadedBundle bundle, IReadOnlyList<string> tasks, CancellationToken cancellationToken) =>
        tasks.Count == 0 ? Task.CompletedTask : ClassifyAsync(bundle, [new ClassifyInput("warm up", "warm up")], tasks, cancellationToken);

    private async Task<ClassifyBatchResult> ClassifyAsync(
        LoadedBundle bundle,
        IReadOnlyList<ClassifyInput> inputs,
        IReadOnlyList<string>? tasks,
        CancellationToken cancellationToken)
    {
        PreparedRequest request = Prepare(bundle, inputs, tasks);
        IReadOnlyList<ClassifyBatchResult> results = await RunAsync(bundle, [request], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>
    /// Runs prepared requests of one snapshot together. Rows are grouped by input kind (single
    /// sentences are short, pairs long: padding each group to its own longest row wastes less),
    /// each group runs the trunk once with only the branch layers its tasks need, then every head
    /// of that kind runs once over the group.
    /// </summary>
    internal async Task<IReadOnlyList<ClassifyBatchResult>> RunAsync(
        LoadedBundle bundle,
        IReadOnlyList<PreparedRequest> requests,
        CancellationToken cancellationToken)
    {
        // Global row position of every (request, plan row): which kind group and which row in it.
        var groups = new Dictionary<TaskInputKind, KindGroup>(2);
        var position = new (KindGroup Group, int Row)[requests.Count][];
        for (int r = 0; r < requests.Count; r++)
        {
            PreparedRequest request = requests[r];
            if (!ReferenceEquals(request.Bundle, bundle))
            {
                throw new InvalidOperationException("A prepared request belongs to another bundle snapshot.");
            }

            position[r] = new (KindGroup, int)[request.Encoded.Length];
            for (int row = 0; row < request.Encoded.Length; row++)
            {
                TaskInputKind kind = request.Plan.Rows[row].Kind;
                if (!groups.TryGetValue(kind, out KindGroup? group))
                {
                    group = new KindGroup(kind);
                    groups.Add(kind, group);
                }

                position[r][row] = (group, group.Rows.Count);
                group.Rows.Add(request.Encoded[row]);
            }

            foreach (TaskDefinition task in request.Plan.Tasks)
            {
                if (groups.TryGetValue(task.Input, out KindGroup? group) && !group.Tasks.Contains(task))
                {
                    group.Tasks.Add(task);
                }
            }
        }

        try
        {
            using var runOptions = new RunOptions();
            if (bundle.RunSettings.ShrinkCpuArena)
            {
                // Give the arena's free regions back after the run: otherwise RSS keeps the high-water mark of the largest batch.
                runOptions.AddRunConfigEntry("memory.enable_memory_arena_shrinkage", "cpu:0");
            }

            // A cancelled request (client gone) stops ONNX Runtime between kernels.
            await using (cancellationToken.Register(() => runOptions.Terminate = true))
            {
                try
                {
                    foreach (KindGroup group in groups.Values.OrderBy(g => g.Kind))
                    {
                        await RunGroupAsync(bundle, group, runOptions, cancellationToken).ConfigureAwait(false);
                    }
                }
                catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            }

            return Answers(bundle, requests, position);
        }
        finally
        {
            // Head outputs live in ONNX Runtime's memory until the answers hold their own copies.
            foreach (KindGroup group in groups.Values)
            {
                group.HeadOutputs.ForEach(output => output.Dispose());
            }
        }
    }

    /// <summary>Each request's predictions, read from the head outputs of the groups its rows ran in.</summary>
    private static ClassifyBatchResult[] Answers(LoadedBundle bundle, IReadOnlyList<PreparedRequest> requests, (KindGroup Group, int Row)[][] position)
    {
        var results = new ClassifyBatchResult[requests.Count];
        for (int r = 0; r < requests.Count; r++)
        {
            PreparedRequest request = requests[r];
            BatchPlan plan = request.Plan;
            var perInput = new IReadOnlyDictionary<string, TaskPrediction>[request.InputCount];
            for (int input = 0; input < request.InputCount; input++)
            {
                var predictions = new Dictionary<string, TaskPrediction>(plan.TasksPerInput[input].Count, StringComparer.Ordinal);
                foreach (TaskDefinition task in plan.TasksPerInput[input])
                {
                    int row = plan.RowOf(input, task.Input);
                    (KindGroup group, int groupRow) = position[r][row];
                    predictions[task.Name] = task.Kind.Predict(
                        task, group.Outputs[task][groupRow].Values, request.Encoded[row], request.Alignments[input]);
                }

                perInput[input] = predictions;
            }

            results[r] = new ClassifyBatchResult(bundle.ModelId, perInput);
        }

        return results;
    }

    /// <summary>
    /// Runs one kind group: its rows are split into buckets of similar length (less padding), and
    /// each bucket runs the trunk once (only the branch layers its tasks need) and then every head.
    /// </summary>
    private async Task RunGroupAsync(LoadedBundle bundle, KindGroup group, RunOptions runOptions, CancellationToken cancellationToken)
    {
        int[] layers = [.. group.Tasks.Select(t => t.BranchLayer).Distinct().Order()];
        foreach (TaskDefinition task in group.Tasks)
        {
            group.Outputs[task] = new RowOutput[group.Rows.Count];
        }

        IReadOnlyList<int[]> buckets = LengthBuckets.Split(
            [.. group.Rows.Select(r => r.Length)], bundle.RunSettings.BucketOverheadTokens, bundle.RunSettings.MaxPassTokens);
        foreach (int[] rows in buckets)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TokenBatch batch = TokenBatch.Pad([.. rows.Select(r => group.Rows[r])], bundle.Encoder.PaddingTokenId);
            using OrtValue attentionMask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
            long trunkStart = Stopwatch.GetTimestamp();
            using TrunkOutputs hidden = bundle.Trunk.Run(batch, attentionMask, layers, runOptions);
            _metrics.RecordTrunk(trunkStart, rows.Length);
            // Tasks that read the same head graph (an examples task and its embedding) run it once.
            List<TaskDefinition> heads = [.. group.Tasks.DistinctBy(t => t.Head.FullPath)];
            HeadOutput[] outputs = await RunHeadsAsync(bundle, heads, hidden, attentionMask, runOptions, cancellationToken).ConfigureAwait(false);
            group.HeadOutputs.AddRange(outputs);
            foreach (TaskDefinition task in group.Tasks)
            {
                HeadOutput output = outputs[heads.FindIndex(h => h.Head.FullPath == task.Head.FullPath)];
                RowOutput[] perRow = group.Outputs[task];
                for (int i = 0; i < rows.Length; i++)
                {
                    perRow[rows[i]] = new RowOutput(output, i);
                }
            }
        }
    }

    private async Task<HeadOutput[]> RunHeadsAsync(
        LoadedBundle bundle, List<TaskDefinition> tasks, TrunkOutputs hidden, OrtValue attentionMask, RunOptions runOptions, CancellationToken cancellationToken)
    {
        if (tasks.Count == 1 || !bundle.RunSettings.ParallelHeads)
        {
            var outputs = new List<HeadOutput>(tasks.Count);
            try
            {
                foreach (TaskDefinition task in tasks)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    outputs.Add(RunHead(bundle, task, hidden, attentionMask, runOptions));
                }

                return [.. outputs];
            }
            catch
            {
                outputs.ForEach(output => output.Dispose());
                throw;
            }
        }

        // Heads are independent: run them side by side on the shared hidden states and mask.
        Task<HeadOutput>[] runs = [.. tasks.Select(task => Task.Run(() => RunHead(bundle, task, hidden, attentionMask, runOptions), cancellationToken))];
        try
        {
            return await Task.WhenAll(runs).ConfigureAwait(false);
        }
        catch
        {
            foreach (Task<HeadOutput> run in runs.Where(r => r.IsCompletedSuccessfully))
            {
                run.Result.Dispose();
            }

            throw;
        }
    }

    private HeadOutput RunHead(LoadedBundle bundle, TaskDefinition task, TrunkOutputs hidden, OrtValue attentionMask, RunOptions runOptions)
    {
        long start = Stopwatch.GetTimestamp();
        HeadOutput output = bundle.Heads[task.Name].Run(hidden[task.BranchLayer], attentionMask, runOptions);
        _metrics.RecordHead(start, task);
        return output;
    }

    /// <summary>The rows of one input kind in a batch, the tasks that read them and each row's output per task.</summary>
    private sealed class KindGroup(TaskInputKind kind)
    {
        public TaskInputKind Kind { get; } = kind;
        public List<EncodedInput> Rows { get; } = [];
        public List<TaskDefinition> Tasks { get; } = [];
        public Dictionary<TaskDefinition, RowOutput[]> Outputs { get; } = [];

        /// <summary>Every head output of the group's buckets, disposed once the answers are built.</summary>
        public List<HeadOutput> HeadOutputs { get; } = [];
    }

    /// <summary>Where a row's head output lives: row <see cref="Row"/> of a bucket's output.</summary>
    private readonly record struct RowOutput(HeadOutput Bucket, int Row)
    {
        public ReadOnlySpan<float> Values => Bucket.Row(Row);
    }
}
