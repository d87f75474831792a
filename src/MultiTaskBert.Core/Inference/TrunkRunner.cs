using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Runs the shared trunk once per batch and returns the hidden states of the requested branch
/// layers as ONNX Runtime values in <see cref="OnnxSessionFactory.HiddenStateMemory"/>
/// (device memory on CUDA). Only the requested outputs are bound, so ONNX Runtime computes only
/// the layers they depend on. Thread-safe: each call gets its own IO binding.
/// </summary>
internal sealed class TrunkRunner : IDisposable
{
    private readonly InferenceSession _session;
    private readonly TrunkInputNames _inputs;
    private readonly IReadOnlyDictionary<int, string> _outputsByLayer;
    private readonly OrtMemoryInfo _outputMemory;

    public TrunkRunner(InferenceSession session, TrunkInputNames inputs, IReadOnlyDictionary<int, string> outputsByLayer, OrtMemoryInfo outputMemory)
    {
        _session = session;
        _inputs = inputs;
        _outputsByLayer = outputsByLayer;
        _outputMemory = outputMemory;
    }

    public TrunkOutputs Run(TokenBatch batch, OrtValue attentionMask, IReadOnlyCollection<int> layers, RunOptions runOptions)
    {
        long[] shape = batch.Shape;
        // Views over the managed arrays (pinned), no copy; ONNX Runtime copies them to the device itself on CUDA.
        using OrtValue inputIds = OrtValue.CreateTensorValueFromMemory(batch.InputIds, shape);
        using OrtValue tokenTypeIds = OrtValue.CreateTensorValueFromMemory(batch.TokenTypeIds, shape);
        using OrtIoBinding binding = _session.CreateIoBinding();
        binding.BindInput(_inputs.InputIds, inputIds);
        binding.BindInput(_inputs.AttentionMask, attentionMask);
        binding.BindInput(_inputs.TokenTypeIds, tokenTypeIds);

        int[] orderedLayers = [.. layers];
        foreach (int layer in orderedLayers)
        {
            binding.BindOutputToDevice(_outputsByLayer[layer], _outputMemory);
        }

        _session.RunWithBinding(runOptions, binding);
        binding.SynchronizeBoundOutputs();
        return new TrunkOutputs(orderedLayers, binding.GetOutputValues());
    }

    public void Dispose() => _session.Dispose();
}

/// <summary>Hidden states per branch layer for one batch; owns the ONNX Runtime values.</summary>
internal sealed class TrunkOutputs : IDisposable
{
    private readonly IDisposableReadOnlyCollection<OrtValue> _values;
    private readonly Dictionary<int, OrtValue> _byLayer;

    public TrunkOutputs(IReadOnlyList<int> layers, IDisposableReadOnlyCollection<OrtValue> values)
    {
        _values = values;
        _byLayer = new Dictionary<int, OrtValue>(layers.Count);
        int index = 0;
        foreach (OrtValue value in values)
        {
            _byLayer[layers[index++]] = value;
        }
    }

    public OrtValue this[int layer] => _byLayer[layer];

    public void Dispose() => _values.Dispose();
}
