using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Inference;

/// <summary>Raw output of one head for a whole batch: row-major float32 with its shape.</summary>
internal sealed record HeadOutput(float[] Values, long[] Shape)
{
    /// <summary>Elements per batch row (labels, 1, or sequence × tags).</summary>
    public int RowSize => (int)(Values.Length / Shape[0]);

    /// <summary>One row, as a view (no copy): predictions keep it as their logits.</summary>
    public ArraySegment<float> Row(int row) => new(Values, row * RowSize, RowSize);
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
        _outputNames = [task.Head.Output];
    }

    public TaskDefinition Task { get; }

    public HeadOutput Run(OrtValue hiddenStates, OrtValue attentionMask, RunOptions runOptions)
    {
        // Run() hands the hidden states over as they are (no copy when they already live on the
        // head's device) and returns the small logits tensor in CPU memory.
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        OrtValue[] inputs = _inputNames.Length == 2 ? [hiddenStates, attentionMask] : [hiddenStates];
        using IDisposableReadOnlyCollection<OrtValue> outputs = _session.Run(runOptions, _inputNames, inputs, _outputNames);
        OrtValue logits = outputs[0];
        long[] shape = logits.GetTensorTypeAndShape().Shape;
        int expectedRank = Task.OutputKind == TaskOutputKind.Tagging ? 3 : 2;
        if (shape.Length != expectedRank || shape[^1] != Task.OutputWidth)
        {
            string field = Task.OutputKind switch
            {
                TaskOutputKind.Classification => "output.labels",
                TaskOutputKind.Tagging => "output.tags",
                _ => "output.kind",
            };
            throw new BundleValidationException(Task.Head.RelativePath, $"{Task.Head.ManifestField[..^".head".Length]}.{field}",
                $"head output '{Task.Head.Output}' has shape [{string.Join(", ", shape)}], expected rank {expectedRank} with last axis {Task.OutputWidth}");
        }

        var output = new HeadOutput(logits.GetTensorDataAsSpan<float>().ToArray(), shape);
        Engine.EngineMetrics.RecordHead(start, Task);
        return output;
    }

    public void Dispose() => _session.Dispose();
}
