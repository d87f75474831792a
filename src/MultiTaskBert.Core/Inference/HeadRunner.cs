using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Output of one head for a whole batch: row-major float32, left in ONNX Runtime's
/// memory (no managed copy of the batch: a tagging head's [rows, sequence, tags] output would
/// land on the large-object heap). Rows are read as spans until the output is disposed.
/// </summary>
internal sealed class HeadOutput(IDisposableReadOnlyCollection<OrtValue> outputs, long[] shape) : IDisposable
{
    /// <summary>Elements per batch row (labels, 1, or sequence × tags).</summary>
    public int RowSize { get; } = shape[0] == 0 ? 0 : (int)(shape.Aggregate(1L, (a, b) => a * b) / shape[0]);

    /// <summary>One row, valid until <see cref="Dispose"/>.</summary>
    public ReadOnlySpan<float> Row(int row) => outputs[0].GetTensorDataAsSpan<float>().Slice(row * RowSize, RowSize);

    /// <summary>The row's out-of-domain distance (the head's second output), or null when the head has none.</summary>
    public double? Distance(int row) => outputs.Count > 1 ? outputs[1].GetTensorDataAsSpan<float>()[row] : null;

    public void Dispose() => outputs.Dispose();
}

/// <summary>A head run that failed its checks: the task answers an error for the rows of that run, the other tasks are unaffected.</summary>
internal sealed class HeadFaultException(string title, string detail, Exception? inner = null) : Exception(detail, inner)
{
    public string Title { get; } = title;
}

/// <summary>
/// Runs one task head on the trunk's hidden states and checks what it returns (the shape the kind
/// promises for these rows). Each run has its own run options, so that a run past
/// <c>HeadGuards:MaxRunMs</c> or of a batch nobody waits for any more is terminated.
/// Thread-safe.
/// </summary>
internal sealed class HeadRunner : IDisposable
{
    /// <summary>ONNX Runtime messages are cut to this many characters in answers.</summary>
    public const int MaxMessageChars = 300;

    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;
    private readonly OnnxSessionFactory _sessions;
    private readonly long? _memoryBudgetBytes;
    private string[] _filesToDelete = [];

    /// <param name="session">The head's session (disposed with the runner).</param>
    /// <param name="task">The task the head serves.</param>
    /// <param name="sessions">Run options of every run.</param>
    /// <param name="memoryBudgetBytes">The cap of the session's CPU arena (<see cref="BudgetedCpuArena"/>), null when it has none.</param>
    public HeadRunner(InferenceSession session, TaskDefinition task, OnnxSessionFactory sessions, long? memoryBudgetBytes = null)
    {
        _session = session;
        _memoryBudgetBytes = memoryBudgetBytes;
        Task = task;
        _sessions = sessions;
        _inputNames = task.Head.AttentionMaskInput is { } mask ? [task.Head.HiddenStatesInput, mask] : [task.Head.HiddenStatesInput];
        if (task.Head.OutOfDomain?.HiddenStatesInput is { } distanceStates)
        {
            _inputNames = [.. _inputNames, distanceStates];
        }

        _outputNames = task.Head.OutOfDomain is { } distance ? [task.Head.Output, distance.Output] : [task.Head.Output];
    }

    public TaskDefinition Task { get; }

    /// <summary>Runs the head on a trunk pass that produced every layer in <see cref="TaskDefinition.TrunkLayers"/>, within <paramref name="maxRunMs"/> (0: no limit).</summary>
    public HeadOutput Run(TrunkOutputs hidden, OrtValue attentionMask, int rows, int sequence, int maxRunMs, CancellationToken cancellationToken) =>
        Run(hidden[Task.BranchLayer], attentionMask, rows, sequence, maxRunMs, cancellationToken,
            Task.Head.OutOfDomain?.HiddenStatesInput is null ? null : hidden[Task.Head.OutOfDomain.Layer]);

    /// <summary>This head's failures in a row and its quarantine (kept across snapshots that share the head).</summary>
    public HeadHealth Health { get; } = new();

    /// <summary>
    /// Runs the head on <paramref name="rows"/> rows of <paramref name="sequence"/> tokens. Throws
    /// <see cref="HeadFaultException"/> when ONNX Runtime fails, the run passes its time limit or the
    /// output has another shape than the kind's; <see cref="OperationCanceledException"/> when
    /// <paramref name="cancellationToken"/> stopped it. <paramref name="distanceHiddenStates"/>: the trunk
    /// layer the out-of-domain distance reads, when the graph takes it as an input of its own.
    /// </summary>
    public HeadOutput Run(OrtValue hiddenStates, OrtValue attentionMask, int rows, int sequence, int maxRunMs, CancellationToken cancellationToken, OrtValue? distanceHiddenStates = null)
    {
        // Run() hands the hidden states over as they are (no copy when they already live on the
        // head's device) and returns the logits tensor in CPU memory; the caller disposes it.
        OrtValue[] inputs = Task.Head.AttentionMaskInput is null ? [hiddenStates] : [hiddenStates, attentionMask];
        if (Task.Head.OutOfDomain?.HiddenStatesInput is not null)
        {
            inputs = [.. inputs, distanceHiddenStates ?? throw new ArgumentNullException(nameof(distanceHiddenStates))];
        }

        IDisposableReadOnlyCollection<OrtValue> outputs = RunWithLimits(inputs, maxRunMs, cancellationToken);
        long[] shape = outputs[0].GetTensorTypeAndShape().Shape;
        long[] expected = Task.Kind.OutputShape(Task, rows, sequence);
        if (!shape.SequenceEqual(expected))
        {
            outputs.Dispose();
            throw new HeadFaultException("The head's output has the wrong shape.",
                $"head output '{Task.Head.Output}' has shape [{string.Join(", ", shape)}], expected [{string.Join(", ", expected)}] "
                + $"for {rows} rows of {sequence} tokens ({Task.OutputWidthField} gives the last axis)");
        }

        if (outputs.Count > 1)
        {
            long[] distanceShape = outputs[1].GetTensorTypeAndShape().Shape;
            if (distanceShape.Length is < 1 or > 2 || distanceShape[0] != shape[0] || (distanceShape.Length == 2 && distanceShape[1] != 1))
            {
                outputs.Dispose();
                throw new HeadFaultException("The head's out-of-domain output has the wrong shape.",
                    $"head output '{Task.Head.OutOfDomain!.Output}' has shape [{string.Join(", ", distanceShape)}], expected [{shape[0]}] or [{shape[0]}, 1]");
            }
        }

        return new HeadOutput(outputs, shape);
    }

    private IDisposableReadOnlyCollection<OrtValue> RunWithLimits(OrtValue[] inputs, int maxRunMs, CancellationToken cancellationToken)
    {
        using RunOptions runOptions = _sessions.NewRunOptions();
        using var limit = new CancellationTokenSource();
        if (maxRunMs > 0)
        {
            limit.CancelAfter(maxRunMs);
        }

        // Terminate stops ONNX Runtime between kernels (and between a Loop's iterations).
        using CancellationTokenRegistration onCancel = cancellationToken.Register(static o => ((RunOptions)o!).Terminate = true, runOptions);
        using CancellationTokenRegistration onLimit = limit.Token.Register(static o => ((RunOptions)o!).Terminate = true, runOptions);
        long start = Stopwatch.GetTimestamp();
        try
        {
            return _session.Run(runOptions, _inputNames, inputs, _outputNames);
        }
        catch (OnnxRuntimeException ex)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (limit.IsCancellationRequested)
            {
                throw new HeadFaultException("The head ran past its time limit.",
                    $"run terminated after {Stopwatch.GetElapsedTime(start).TotalMilliseconds:F0} ms (HeadGuards:MaxRunMs = {maxRunMs})", ex);
            }

            if (_memoryBudgetBytes is { } budget && BudgetedCpuArena.Refusal(ex.Message) is { } refusal)
            {
                throw new HeadFaultException("The head needs more memory than its budget.",
                    $"the run asked for {Mib(refusal.Requested)} in one allocation with {Mib(refusal.Available)} of its {Mib(budget)} left "
                    + "(HeadGuards:MaxRunMemoryMiB; 0 = four times the trunk graph's size, at least 64 MiB)", ex);
            }

            throw new HeadFaultException("The head's run failed.", $"ONNX Runtime: {Trim(ex.Message)}", ex);
        }
    }

    private static string Mib(long bytes) => string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{bytes / 1048576.0:F1} MiB");

    /// <summary>One line of at most <see cref="MaxMessageChars"/> characters.</summary>
    public static string Trim(string message)
    {
        string line = string.Join(' ', message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        return line.Length <= MaxMessageChars ? line : string.Concat(line.AsSpan(0, MaxMessageChars - 1), "…");
    }

    /// <summary>Files to delete once the session is closed: the head's graphs, when no snapshot after this one reads them.</summary>
    public void DeleteFilesOnDispose(IEnumerable<string> fullPaths) => Volatile.Write(ref _filesToDelete, [.. fullPaths]);

    public void Dispose()
    {
        _session.Dispose();
        foreach (string file in Volatile.Read(ref _filesToDelete))
        {
            Registry.HeadFileStore.TryDelete(file);
        }
    }
}

/// <summary>
/// A head's failed runs in a row; once <c>HeadGuards:QuarantineAfter</c> is reached the head is
/// quarantined (stays so: a replaced or reloaded head gets a new runner). Thread-safe.
/// </summary>
internal sealed class HeadHealth
{
    private int _failuresInARow;
    private string? _quarantine;

    /// <summary>Why the head is quarantined (its last failure), or null while it serves.</summary>
    public string? Quarantine => Volatile.Read(ref _quarantine);

    /// <summary>Counts a failed run; true when this failure quarantined the head (<paramref name="quarantineAfter"/> in a row).</summary>
    public bool RecordFailure(string detail, int quarantineAfter) =>
        Interlocked.Increment(ref _failuresInARow) >= quarantineAfter && Interlocked.CompareExchange(ref _quarantine, detail, null) is null;

    public void RecordSuccess() => Volatile.Write(ref _failuresInARow, 0);
}
