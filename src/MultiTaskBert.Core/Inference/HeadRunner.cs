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

/// <summary>Runs one task head on the trunk's hidden states. Thread-safe.</summary>
internal sealed class HeadRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _inputNames;
    private readonly string[] _outputNames;

    public HeadRunner(InferenceSession session, TaskDefinition task)
    {
        _session = session;
        Task = task;
        _inputNames = task.Head.AttentionMaskInput is { } mask ? [task.Head.HiddenStatesInput, mask] : [task.Head.HiddenStatesInput];
        if (task.Head.OutOfDomain?.HiddenStatesInput is { } distanceStates)
        {
            _inputNames = [.. _inputNames, distanceStates];
        }

        _outputNames = task.Head.OutOfDomain is { } distance ? [task.Head.Output, distance.Output] : [task.Head.Output];
    }

    public TaskDefinition Task { get; }

    /// <summary>Runs the head on a trunk pass that produced every layer in <see cref="TaskDefinition.TrunkLayers"/>.</summary>
    public HeadOutput Run(TrunkOutputs hidden, OrtValue attentionMask, RunOptions runOptions) =>
        Run(hidden[Task.BranchLayer], attentionMask, runOptions, Task.Head.OutOfDomain?.HiddenStatesInput is null ? null : hidden[Task.Head.OutOfDomain.Layer]);

    /// <param name="distanceHiddenStates">The trunk layer the out-of-domain distance reads, when the graph takes it as an input of its own.</param>
    public HeadOutput Run(OrtValue hiddenStates, OrtValue attentionMask, RunOptions runOptions, OrtValue? distanceHiddenStates = null)
    {
        // Run() hands the hidden states over as they are (no copy when they already live on the
        // head's device) and returns the logits tensor in CPU memory; the caller disposes it.
        OrtValue[] inputs = Task.Head.AttentionMaskInput is null ? [hiddenStates] : [hiddenStates, attentionMask];
        if (Task.Head.OutOfDomain?.HiddenStatesInput is not null)
        {
            inputs = [.. inputs, distanceHiddenStates ?? throw new ArgumentNullException(nameof(distanceHiddenStates))];
        }

        IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(runOptions, _inputNames, inputs, _outputNames);
        long[] shape = outputs[0].GetTensorTypeAndShape().Shape;
        int expectedRank = Task.Kind.OutputRank;
        if (shape.Length != expectedRank || shape[^1] != Task.OutputWidth)
        {
            outputs.Dispose();
            throw new BundleValidationException(Task.Head.RelativePath, Task.OutputWidthField,
                $"head output '{Task.Head.Output}' has shape [{string.Join(", ", shape)}], expected rank {expectedRank} with last axis {Task.OutputWidth}");
        }

        if (outputs.Count > 1)
        {
            long[] distanceShape = outputs[1].GetTensorTypeAndShape().Shape;
            if (distanceShape.Length is < 1 or > 2 || distanceShape[0] != shape[0] || (distanceShape.Length == 2 && distanceShape[1] != 1))
            {
                outputs.Dispose();
                throw new BundleValidationException(Task.Head.RelativePath, $"{Task.Head.ManifestField}.outOfDomain.output",
                    $"head output '{Task.Head.OutOfDomain!.Output}' has shape [{string.Join(", ", distanceShape)}], expected [{shape[0]}] or [{shape[0]}, 1]");
            }
        }

        return new HeadOutput(outputs, shape);
    }

    public void Dispose() => _session.Dispose();
}
