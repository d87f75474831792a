using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Inference;

/// <summary>One node run as ONNX Runtime's profiler recorded it: which provider ran it, on which tensor types.</summary>
public sealed record NodeRun(string Node, string OpType, string Provider, IReadOnlyList<string> TensorTypes)
{
    /// <summary>
    /// Whether the node reads or writes a floating-point tensor. ONNX Runtime itself places small
    /// shape arithmetic (int64 tensors of a few elements: Shape, Gather of a dimension, Concat of a
    /// new shape) on the CPU, which moves no activations; a float node on the CPU is a real fallback.
    /// </summary>
    public bool TouchesFloats => TensorTypes.Any(t => t is "float" or "float16" or "double" or "bfloat16");
}

/// <summary>
/// Reads an ONNX Runtime profile (<c>SessionOptions.EnableProfiling</c>, written by
/// <c>InferenceSession.EndProfiling</c>): one entry per node run, with its execution provider.
/// Used to prove that on CUDA no float node of the trunk or a head falls back to the CPU.
/// </summary>
public static class NodePlacement
{
    public const string CpuProvider = "CPUExecutionProvider";

    public static IReadOnlyList<NodeRun> ReadProfile(string profilePath)
    {
        using FileStream stream = File.OpenRead(profilePath);
        using JsonDocument document = JsonDocument.Parse(stream);
        var runs = new Dictionary<string, NodeRun>(StringComparer.Ordinal);
        foreach (JsonElement e in document.RootElement.EnumerateArray())
        {
            if (!e.TryGetProperty("cat", out JsonElement cat) || cat.GetString() != "Node"
                || !e.TryGetProperty("name", out JsonElement name) || name.GetString() is not { } n || !n.EndsWith("_kernel_time", StringComparison.Ordinal)
                || !e.TryGetProperty("args", out JsonElement args) || !args.TryGetProperty("provider", out JsonElement provider))
            {
                continue;
            }

            string node = n[..^"_kernel_time".Length];
            var types = new List<string>();
            foreach (string key in (string[])["input_type_shape", "output_type_shape"])
            {
                if (args.TryGetProperty(key, out JsonElement shapes) && shapes.ValueKind == JsonValueKind.Array)
                {
                    types.AddRange(shapes.EnumerateArray().SelectMany(s => s.EnumerateObject().Select(p => p.Name)));
                }
            }

            string op = args.TryGetProperty("op_name", out JsonElement o) ? o.GetString() ?? "" : "";
            runs.TryAdd(node, new NodeRun(node, op, provider.GetString() ?? "", types));
        }

        return [.. runs.Values];
    }

    /// <summary>
    /// Runs the graphs that <paramref name="sessions"/> would serve for <paramref name="bundle"/> (the
    /// trunk and every head, float16 ones where chosen) once each with ONNX Runtime's profiler on and
    /// returns the node runs per graph file. The profiles are written under <paramref name="workDirectory"/>.
    /// </summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<NodeRun>> ProfileBundle(OnnxSessionFactory sessions, ModelBundle bundle, string workDirectory)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        ArgumentNullException.ThrowIfNull(bundle);
        Directory.CreateDirectory(workDirectory);
        bool float16 = GraphSelection.ServesFloat16(bundle, sessions.Precision, sessions.Target);
        TrunkManifest trunk = bundle.Manifest.Trunk;
        const int sequence = 8;
        long[] shape = [1, sequence];
        long[] ids = [101, 7592, 2088, 2003, 1037, 3231, 1012, 102];
        long[] ones = [.. Enumerable.Repeat(1L, sequence)];
        long[] zeros = new long[sequence];
        var result = new Dictionary<string, IReadOnlyList<NodeRun>>(StringComparer.Ordinal);
        using OrtValue mask = OrtValue.CreateTensorValueFromMemory(ones, shape);

        string trunkFile = float16 ? trunk.Float16!.File : trunk.File;
        result[trunkFile] = Profile(sessions, float16 ? bundle.Float16TrunkPath! : bundle.TrunkPath, workDirectory, session =>
        {
            using OrtValue inputIds = OrtValue.CreateTensorValueFromMemory(ids, shape);
            using OrtValue types = OrtValue.CreateTensorValueFromMemory(zeros, shape);
            using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(
                new RunOptions(), [trunk.Inputs.InputIds, trunk.Inputs.AttentionMask, trunk.Inputs.TokenTypeIds], [inputIds, mask, types], [.. trunk.Outputs.Select(o => o.Name)]);
        });

        float[] hidden = [.. Enumerable.Range(0, sequence * trunk.HiddenSize).Select(i => MathF.Sin(i) * 0.5f)];
        foreach (TaskDefinition task in bundle.Tasks)
        {
            GraphFile graph = task.Head.For(float16);
            result[graph.RelativePath] = Profile(sessions, graph.FullPath, workDirectory, session =>
            {
                using OrtValue states = OrtValue.CreateTensorValueFromMemory(hidden, [1, sequence, trunk.HiddenSize]);
                string[] names = task.Head.AttentionMaskInput is { } m ? [task.Head.HiddenStatesInput, m] : [task.Head.HiddenStatesInput];
                OrtValue[] values = names.Length == 2 ? [states, mask] : [states];
                using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(new RunOptions(), names, values, [task.Head.Output]);
            });
        }

        return result;
    }

    private static IReadOnlyList<NodeRun> Profile(OnnxSessionFactory sessions, string modelPath, string workDirectory, Action<InferenceSession> run)
    {
        string prefix = Path.Combine(workDirectory, Path.GetFileNameWithoutExtension(modelPath));
        using InferenceSession session = sessions.CreateSession(modelPath, prefix);
        run(session);
        return ReadProfile(session.EndProfiling());
    }

    /// <summary>Nodes that computed on floats on the CPU: empty when every float node ran on <paramref name="provider"/>.</summary>
    public static IReadOnlyList<NodeRun> FloatFallbacks(IEnumerable<NodeRun> runs, string provider = OnnxSessionFactory.CudaProviderName) =>
        [.. runs.Where(r => r.Provider != provider && r.TouchesFloats)];
}
