using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// Serves many tasks from one trunk: a batch is tokenized, padded to its longest member, run
/// through the trunk once (only the branch layers needed), then through every requested head
/// concurrently. Batch-oriented so that cross-request micro-batching can sit in front of it.
/// </summary>
public sealed partial class MultiTaskEngine : IDisposable
{
    private readonly OnnxSessionFactory _sessions;
    private readonly ILogger<MultiTaskEngine> _logger;
    private LoadedBundle? _current;

    public MultiTaskEngine(OnnxSessionFactory sessions, ILogger<MultiTaskEngine> logger)
    {
        _sessions = sessions;
        _logger = logger;
    }

    /// <summary>The snapshot in service, or null before <see cref="LoadAsync"/> finished (including warm-up).</summary>
    public LoadedBundle? Current => Volatile.Read(ref _current);

    public bool IsReady => Current is not null;

    public ExecutionTarget Target => _sessions.Target;

    /// <summary>
    /// Validates and loads a bundle, runs one warm-up inference over every task, then puts it in
    /// service. Throws <see cref="BundleValidationException"/> when the bundle cannot be served.
    /// </summary>
    public async Task LoadAsync(string bundleDirectory, CancellationToken cancellationToken = default)
    {
        ModelBundle bundle = await BundleLoader.LoadAsync(bundleDirectory, cancellationToken).ConfigureAwait(false);
        LoadedBundle loaded = LoadedBundle.Create(bundle, _sessions);
        try
        {
            await WarmUpAsync(loaded, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }

        // Replacing a bundle in service needs draining of in-flight batches before disposal; that
        // arrives with hot task add/replace. Until then a bundle is loaded once.
        if (Interlocked.CompareExchange(ref _current, loaded, null) is not null)
        {
            loaded.Dispose();
            throw new InvalidOperationException("A bundle is already loaded.");
        }

        LogLoaded(_logger, loaded.ModelId, loaded.Tasks.Count, _sessions.Target);
    }

    public Task<ClassifyBatchResult> ClassifyAsync(IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? tasks, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        LoadedBundle bundle = Current ?? throw new EngineNotReadyException();
        return ClassifyAsync(bundle, inputs, tasks, cancellationToken);
    }

    private static Task WarmUpAsync(LoadedBundle bundle, CancellationToken cancellationToken)
    {
        if (bundle.Tasks.Count == 0)
        {
            return Task.CompletedTask;
        }

        ClassifyInput[] inputs = [new("warm up", "warm up")];
        return ClassifyAsync(bundle, inputs, [.. bundle.Tasks.Select(t => t.Name)], cancellationToken);
    }

    private static async Task<ClassifyBatchResult> ClassifyAsync(
        LoadedBundle bundle,
        IReadOnlyList<ClassifyInput> inputs,
        IReadOnlyList<string>? tasks,
        CancellationToken cancellationToken)
    {
        BatchPlan plan = BatchPlan.Create(bundle, inputs, tasks);
        var results = new IReadOnlyDictionary<string, TaskPrediction>[inputs.Count];
        if (plan.Tasks.Count == 0)
        {
            Array.Fill(results, new Dictionary<string, TaskPrediction>());
            return new ClassifyBatchResult(bundle.ModelId, results);
        }

        EncodedInput[] encoded = [.. plan.Rows.Select(r => bundle.Encoder.Encode(inputs[r.InputIndex].Text,
            r.Kind == TaskInputKind.Pair ? inputs[r.InputIndex].TextPair : null))];
        TokenBatch batch = TokenBatch.Pad(encoded, bundle.Encoder.PaddingTokenId);

        HeadOutput[] outputs;
        using var runOptions = new RunOptions();
        // A cancelled request (client gone) stops ONNX Runtime between kernels.
        await using (cancellationToken.Register(() => runOptions.Terminate = true))
        {
            try
            {
                using OrtValue attentionMask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
                using TrunkOutputs hidden = bundle.Trunk.Run(batch, attentionMask, plan.Layers, runOptions);

                // Heads are independent: run them side by side on the shared hidden states and mask.
                outputs = await Task.WhenAll(plan.Tasks.Select(task =>
                {
                    HeadRunner head = bundle.Heads[task.Name];
                    return Task.Run(() => head.Run(hidden[task.BranchLayer], attentionMask, runOptions), cancellationToken);
                })).ConfigureAwait(false);
            }
            catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
        }

        var outputByTask = new Dictionary<TaskDefinition, HeadOutput>(plan.Tasks.Count);
        for (int i = 0; i < plan.Tasks.Count; i++)
        {
            outputByTask[plan.Tasks[i]] = outputs[i];
        }

        for (int input = 0; input < inputs.Count; input++)
        {
            var predictions = new Dictionary<string, TaskPrediction>(plan.TasksPerInput[input].Count, StringComparer.Ordinal);
            foreach (TaskDefinition task in plan.TasksPerInput[input])
            {
                int row = plan.RowOf(input, task.Input);
                predictions[task.Name] = PredictionMapper.Map(task, outputByTask[task].Row(row), encoded[row]);
            }

            results[input] = predictions;
        }

        return new ClassifyBatchResult(bundle.ModelId, results);
    }

    public void Dispose() => Interlocked.Exchange(ref _current, null)?.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle {Model} loaded and warmed up: {TaskCount} tasks on {Target}")]
    private static partial void LogLoaded(ILogger logger, string model, int taskCount, ExecutionTarget target);
}
