using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Batching;
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
public sealed partial class MultiTaskEngine
{
    private readonly EngineMetrics _metrics;
    private readonly OnnxSessionFactory _sessions;
    private readonly BatchingOptions _batching;
    private readonly HeadGuardOptions _guards;
    private readonly int _passTokens;
    private readonly ILogger _logger;
    private long _runsFinished;

    /// <param name="snapshots">Where the snapshots it runs are leased from.</param>
    /// <param name="metrics">Trunk and head timings, head failures.</param>
    /// <param name="sessions">The device (the pass limit's default) and the run options.</param>
    /// <param name="batching">How one batch runs: <c>Batching:ParallelHeads</c>, <c>BucketOverheadTokens</c>, <c>MaxPassTokens</c>, <c>MaxBatchSize</c> (the warm-up's largest input).</param>
    /// <param name="guards"><c>HeadGuards</c>: a head run's time limit and the failures that quarantine it.</param>
    /// <param name="logger">Head failures, quarantines, the warm-up's time.</param>
    public MultiTaskEngine(SnapshotHolder snapshots, EngineMetrics metrics, OnnxSessionFactory sessions,
        IOptions<BatchingOptions> batching, IOptions<HeadGuardOptions> guards, ILogger<MultiTaskEngine>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(metrics);
        ArgumentNullException.ThrowIfNull(sessions);
        Snapshots = snapshots;
        _metrics = metrics;
        _sessions = sessions;
        _batching = batching.Value;
        _guards = guards.Value;
        _passTokens = BatchingOptions.PassLimit(_batching.MaxPassTokens, sessions.Target);
        _logger = logger ?? (ILogger)NullLogger.Instance;
    }

    /// <summary>The snapshot in service, or null before the first load finished (including warm-up).</summary>
    public BundleSnapshot? Current => Snapshots.Current;

    /// <summary>
    /// A request's fallback-threshold problems against the snapshot in service now. For a request refused
    /// for its shape, which never runs, so that its one answer names every problem; a request that runs
    /// is checked against the snapshot it leases (<see cref="Prepare"/>).
    /// </summary>
    public Dictionary<string, string[]> FallbackThresholdProblems(IReadOnlyDictionary<string, double>? thresholds) =>
        Current is { } current ? FallbackThresholdCheck.Problems(thresholds, current) : [];

    public bool IsReady => Current is not null;

    /// <summary>The <c>Batching</c> settings a batch runs with.</summary>
    internal BatchingOptions Batching => _batching;

    /// <summary>Padded tokens of one trunk pass at most: <c>Batching:MaxPassTokens</c>, or the device's default.</summary>
    internal int PassTokens => _passTokens;

    /// <summary>Batch runs finished so far (an activity count: the idle memory trim waits until it stops moving).</summary>
    public long RunsFinished => Interlocked.Read(ref _runsFinished);

    /// <summary>Where the snapshots this engine runs are leased from.</summary>
    internal SnapshotHolder Snapshots { get; }

    /// <summary>Serves <paramref name="inputs"/> with <paramref name="tasks"/> (null: every task served by default that fits).</summary>
    public Task<RequestPredictions> ClassifyAsync(IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? tasks, CancellationToken cancellationToken = default) =>
        ClassifyAsync(new ClassifyQuery(inputs, tasks), cancellationToken);

    /// <summary>Serves one request on the snapshot in service (bad input: see <see cref="Prepare"/>).</summary>
    public async Task<RequestPredictions> ClassifyAsync(ClassifyQuery query, CancellationToken cancellationToken = default)
    {
        using PreparedRequest request = Prepare(query);
        IReadOnlyList<RequestPredictions> results = await RunAsync([request], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>
    /// Leases the snapshot in service and validates and tokenizes one request against it, on the
    /// caller's thread. The request holds the lease until it is disposed; bad input throws
    /// <see cref="InvalidClassifyRequestException"/> naming its fields by the query's
    /// <see cref="ClassifyQuery.Fields"/>, and holds nothing. The fallback thresholds are checked
    /// against this snapshot, the one the request's answers come from.
    /// </summary>
    /// <exception cref="EngineNotReadyException">No snapshot is in service.</exception>
    internal PreparedRequest Prepare(ClassifyQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        BundleSnapshot snapshot = Snapshots.Lease();
        try
        {
            Dictionary<string, string[]> thresholdProblems = FallbackThresholdCheck.Problems(query.FallbackThresholds, snapshot);
            if (thresholdProblems.Count > 0)
            {
                throw new InvalidClassifyRequestException(thresholdProblems);
            }

            return Plan(snapshot, query.Inputs, query.Tasks, query.Fields, leased: true);
        }
        catch
        {
            snapshot.ReleaseLease();
            throw;
        }
    }

    private static PreparedRequest Plan(BundleSnapshot bundle, IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? tasks, RequestFieldNames fields, bool leased)
    {
        EmbeddingPairExpansion? pairs;
        (inputs, RequestPlan plan, pairs) = EmbeddingPairExpansion.Expand(bundle, inputs, RequestPlan.Create(bundle, inputs, tasks, fields));
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

        return new PreparedRequest(bundle, leased, inputs.Count, plan, encoded, alignments, pairs);
    }

    /// <summary>
    /// Runs <paramref name="tasks"/> of a snapshot not yet in service, so that its new sessions are
    /// loaded and fail (if they do) before it serves: once on two inputs of different lengths (a head
    /// that ignores the batch axis fails here), once at the largest head input a batch can make
    /// (<see cref="BatchingOptions.LargestHeadRows"/> rows of the longest sequence: within
    /// <see cref="HeadGuardOptions.MaxRunMs"/>). A head that fails either is a
    /// <see cref="BundleValidationException"/> naming its file and the failure.
    /// </summary>
    internal async Task WarmUpAsync(BundleSnapshot bundle, IReadOnlyList<string> tasks, CancellationToken cancellationToken)
    {
        if (tasks.Count == 0)
        {
            return;
        }

        RequestPredictions small = await ClassifyAsync(bundle, [new ClassifyInput("warm up", "warm up"), new ClassifyInput("warm up the head", "with a longer pair")], tasks, cancellationToken).ConfigureAwait(false);
        RequireAnswers(bundle, small, "a warm-up run on 2 short inputs");

        // Words enough to be truncated to the longest sequence, for both parts of a pair.
        string longest = string.Join(' ', Enumerable.Repeat("warm", bundle.Encoder.MaxSequenceLength));
        int rows = _batching.LargestHeadRows(bundle.Encoder.MaxSequenceLength, _sessions.Target);
        long start = Stopwatch.GetTimestamp();
        RequestPredictions largest = await ClassifyAsync(bundle, [.. Enumerable.Repeat(new ClassifyInput(longest, longest), rows)], tasks, cancellationToken).ConfigureAwait(false);
        RequireAnswers(bundle, largest, $"a warm-up run at the largest head input ({rows} rows of {bundle.Encoder.MaxSequenceLength} tokens)");
        double elapsedMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        LogLargestWarmUp(_logger, tasks.Count, rows, bundle.Encoder.MaxSequenceLength, elapsedMs, _guards.MaxRunMs);
    }

    private static void RequireAnswers(BundleSnapshot bundle, RequestPredictions result, string run)
    {
        foreach (IReadOnlyDictionary<string, TaskPrediction> input in result.Results)
        {
            foreach ((string name, TaskPrediction prediction) in input)
            {
                if (prediction is TaskFailure failure)
                {
                    TaskDefinition task = bundle.Tasks.First(t => t.Name == name);
                    throw new BundleValidationException(task.Head.RelativePath, $"{task.Head.ManifestField}.file", $"{run}: {failure.Title} {failure.Detail}");
                }
            }
        }
    }

    private async Task<RequestPredictions> ClassifyAsync(
        BundleSnapshot bundle,
        IReadOnlyList<ClassifyInput> inputs,
        IReadOnlyList<string>? tasks,
        CancellationToken cancellationToken)
    {
        // The caller (the registry, before the swap) keeps the snapshot alive: no lease of its own.
        using PreparedRequest request = Plan(bundle, inputs, tasks, RequestFieldNames.Batch, leased: false);
        IReadOnlyList<RequestPredictions> results = await RunAsync([request], cancellationToken).ConfigureAwait(false);
        return results[0];
    }

    /// <summary>
    /// Runs prepared requests of one snapshot together, with shared trunk passes; every request
    /// gets exactly its own results. Rows are grouped by input kind (single sentences are short,
    /// pairs long: padding each group to its own longest row wastes less), each group runs the
    /// trunk once with only the branch layers its tasks need, then every head of that kind runs
    /// once over the group. The requests keep their leases: their owner disposes them.
    /// </summary>
    internal async Task<IReadOnlyList<RequestPredictions>> RunAsync(IReadOnlyList<PreparedRequest> requests, CancellationToken cancellationToken)
    {
        BundleSnapshot bundle = requests[0].Snapshot;
        (Dictionary<TaskInputKind, KindGroup> groups, (KindGroup Group, int Row)[][] position) = GroupRows(bundle, requests);
        try
        {
            using RunOptions runOptions = _sessions.NewRunOptions();

            // Cancelled (every request of the batch gone, or shutdown): ONNX Runtime stops between kernels.
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

            Interlocked.Increment(ref _runsFinished);
        }
    }

    /// <summary>Every (request, plan row)'s place: which input-kind group and which row in it; each group lists the tasks reading it.</summary>
    private static (Dictionary<TaskInputKind, KindGroup> Groups, (KindGroup Group, int Row)[][] Position) GroupRows(BundleSnapshot bundle, IReadOnlyList<PreparedRequest> requests)
    {
        var groups = new Dictionary<TaskInputKind, KindGroup>(2);
        var position = new (KindGroup Group, int Row)[requests.Count][];
        for (int r = 0; r < requests.Count; r++)
        {
            PreparedRequest request = requests[r];
            if (!ReferenceEquals(request.Snapshot, bundle))
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

        return (groups, position);
    }

    /// <summary>Each request's predictions, read from the head outputs of the groups its rows ran in.</summary>
    private static RequestPredictions[] Answers(BundleSnapshot bundle, IReadOnlyList<PreparedRequest> requests, (KindGroup Group, int Row)[][] position)
    {
        var results = new RequestPredictions[requests.Count];
        for (int r = 0; r < requests.Count; r++)
        {
            PreparedRequest request = requests[r];
            RequestPlan plan = request.Plan;
            var perInput = new IReadOnlyDictionary<string, TaskPrediction>[request.InputCount];
            for (int input = 0; input < request.InputCount; input++)
            {
                var predictions = new Dictionary<string, TaskPrediction>(plan.TasksPerInput[input].Count, StringComparer.Ordinal);
                foreach (TaskDefinition task in plan.TasksPerInput[input])
                {
                    int row = plan.RowOf(input, task.Input);
                    (KindGroup group, int groupRow) = position[r][row];
                    RowOutput output = group.Outputs[task][groupRow];
                    predictions[task.Name] = output.Failure
                        ?? task.Kind.Predict(task, output.Values, output.Distance, request.Encoded[row], request.Alignments[input]);
                }

                perInput[input] = predictions;
            }

            results[r] = request.Complete(new RequestPredictions(bundle.ModelId, perInput));
        }

        return results;
    }

    /// <summary>
    /// Runs one kind group: its rows are split into buckets of similar length (less padding), and
    /// each bucket runs the trunk once (only the branch layers its tasks need) and then every head.
    /// A head that fails (or is quarantined) fails its task for the bucket's rows only.
    /// </summary>
    private async Task RunGroupAsync(BundleSnapshot bundle, KindGroup group, RunOptions runOptions, CancellationToken cancellationToken)
    {
        foreach (TaskDefinition task in group.Tasks)
        {
            group.Outputs[task] = new RowOutput[group.Rows.Count];
        }

        // A quarantined head does not run: its task answers the quarantine for every row.
        List<TaskDefinition> serving = [];
        foreach (TaskDefinition task in group.Tasks)
        {
            if (bundle.Heads[task.Name].Health.Quarantine is { } reason)
            {
                Array.Fill(group.Outputs[task], new RowOutput(null, 0, Quarantined(task, reason)));
            }
            else
            {
                serving.Add(task);
            }
        }

        if (serving.Count == 0)
        {
            return;
        }

        // The branch layers, and the layers out-of-domain distances read beside them.
        int[] layers = [.. serving.SelectMany(t => t.TrunkLayers).Distinct().Order()];

        IReadOnlyList<int[]> buckets = LengthBuckets.Split(
            [.. group.Rows.Select(r => r.Length)], _batching.BucketOverheadTokens, _passTokens);
        foreach (int[] rows in buckets)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TokenBatch batch = TokenBatch.Pad([.. rows.Select(r => group.Rows[r])], bundle.Encoder.PaddingTokenId);
            using OrtValue attentionMask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
            long trunkStart = Stopwatch.GetTimestamp();
            using TrunkOutputs hidden = bundle.Trunk.Run(batch, attentionMask, layers, runOptions);
            _metrics.RecordTrunk(trunkStart, rows.Length);
            var shape = new HeadInput(hidden, attentionMask, rows.Length, (int)batch.Shape[1]);
            // Tasks that read the same head graph (an examples task and its embedding) run it once.
            List<TaskDefinition> heads = [.. serving.DistinctBy(t => t.Head.FullPath)];
            HeadRun[] runs = await RunHeadsAsync(bundle, heads, shape, cancellationToken).ConfigureAwait(false);
            foreach (HeadRun run in runs.Where(r => r.Output is not null))
            {
                group.HeadOutputs.Add(run.Output!);
            }

            foreach (TaskDefinition task in serving)
            {
                HeadRun run = runs[heads.FindIndex(h => h.Head.FullPath == task.Head.FullPath)];
                Keep(bundle, group, run with { Task = task }, rows);
            }
        }
    }

    private TaskFailure Quarantined(TaskDefinition task, string reason) =>
        new(task.Kind, "The head is quarantined.",
            $"task '{task.Name}' version {task.Version} failed {_guards.QuarantineAfter} runs in a row and no longer runs until it is replaced or removed; last failure: {reason}");

    /// <summary>
    /// Stores a head run's rows for the answers: each row's values when they are all finite, else
    /// that row's failure; the run's failure for every row when it failed. Counts the run for the quarantine.
    /// </summary>
    private void Keep(BundleSnapshot bundle, KindGroup group, HeadRun run, int[] rows)
    {
        TaskDefinition task = run.Task;
        RowOutput[] perRow = group.Outputs[task];
        string? failed = run.Failure?.Detail;
        for (int i = 0; i < rows.Length; i++)
        {
            if (run.Output is null)
            {
                perRow[rows[i]] = new RowOutput(null, i, run.Failure);
                continue;
            }

            int tokens = group.Rows[rows[i]].Length;
            int notFinite = CountNotFinite(run.Output.Row(i)[..task.Kind.ValuesRead(task, tokens)]);
            if (notFinite == 0)
            {
                perRow[rows[i]] = new RowOutput(run.Output, i, null);
                continue;
            }

            failed = $"head output '{task.Head.Output}' holds {notFinite} values that are NaN or infinite for an input of {tokens} tokens";
            perRow[rows[i]] = new RowOutput(null, i, new TaskFailure(task.Kind, "The head's output is not finite.", failed));
        }

        HeadHealth health = bundle.Heads[task.Name].Health;
        if (failed is null)
        {
            health.RecordSuccess();
            return;
        }

        _metrics.RecordHeadFailure(task);
        LogHeadFailed(_logger, task.Name, task.Version, failed);
        if (health.RecordFailure(failed, _guards.QuarantineAfter))
        {
            LogHeadQuarantined(_logger, task.Name, task.Version, _guards.QuarantineAfter, failed);
        }
    }

    private static int CountNotFinite(ReadOnlySpan<float> values)
    {
        int count = 0;
        foreach (float value in values)
        {
            count += float.IsFinite(value) ? 0 : 1;
        }

        return count;
    }

    private async Task<HeadRun[]> RunHeadsAsync(BundleSnapshot bundle, List<TaskDefinition> tasks, HeadInput input, CancellationToken cancellationToken)
    {
        if (tasks.Count == 1 || !_batching.ParallelHeads)
        {
            var runs = new List<HeadRun>(tasks.Count);
            try
            {
                foreach (TaskDefinition task in tasks)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    runs.Add(RunHead(bundle, task, input, cancellationToken));
                }

                return [.. runs];
            }
            catch
            {
                runs.ForEach(run => run.Output?.Dispose());
                throw;
            }
        }

        // Heads are independent: run them side by side on the shared hidden states and mask.
        Task<HeadRun>[] parallel = [.. tasks.Select(task => Task.Run(() => RunHead(bundle, task, input, cancellationToken), cancellationToken))];
        try
        {
            return await Task.WhenAll(parallel).ConfigureAwait(false);
        }
        catch
        {
            foreach (Task<HeadRun> run in parallel.Where(r => r.IsCompletedSuccessfully))
            {
                run.Result.Output?.Dispose();
            }

            throw;
        }
    }

    /// <summary>One head's run; a failure of the head (not a cancellation) is kept as the task's failure.</summary>
    private HeadRun RunHead(BundleSnapshot bundle, TaskDefinition task, HeadInput input, CancellationToken cancellationToken)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            HeadOutput output = bundle.Heads[task.Name].Run(input.Hidden, input.AttentionMask, input.Rows, input.Sequence, _guards.MaxRunMs, cancellationToken);
            return new HeadRun(task, output, null);
        }
        catch (HeadFaultException fault)
        {
            return new HeadRun(task, null, new TaskFailure(task.Kind, fault.Title, fault.Message));
        }
        finally
        {
            _metrics.RecordHead(start, task);
        }
    }

    /// <summary>What every head of a bucket reads: the hidden states, the mask and their shape.</summary>
    private sealed record HeadInput(TrunkOutputs Hidden, OrtValue AttentionMask, int Rows, int Sequence);

    /// <summary>One head's run on a bucket: its output, or why it has none.</summary>
    private sealed record HeadRun(TaskDefinition Task, HeadOutput? Output, TaskFailure? Failure);

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

    /// <summary>Where a row's head output lives (row <see cref="Row"/> of a bucket's output), or the row's failure.</summary>
    private readonly record struct RowOutput(HeadOutput? Bucket, int Row, TaskFailure? Failure)
    {
        public ReadOnlySpan<float> Values => Bucket!.Row(Row);

        public double? Distance => Bucket!.Distance(Row);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Task {Task} version {Version}: head run failed ({Failure}); the task answers an error for those inputs")]
    private static partial void LogHeadFailed(ILogger logger, string task, int version, string failure);

    [LoggerMessage(Level = LogLevel.Error, Message = "Task {Task} version {Version} quarantined after {Failures} failed runs in a row (last: {Failure}); it answers an error until replaced or removed")]
    private static partial void LogHeadQuarantined(ILogger logger, string task, int version, int failures, string failure);

    [LoggerMessage(Level = LogLevel.Information, Message = "Warm-up of {Tasks} tasks at the largest head input ({Rows} rows of {Tokens} tokens): {Milliseconds:F0} ms for the trunk and every head (each head within HeadGuards:MaxRunMs = {MaxRunMs})")]
    private static partial void LogLargestWarmUp(ILogger logger, int tasks, int rows, int tokens, double milliseconds, int maxRunMs);
}
