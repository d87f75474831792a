// Times a trunk in float32 against int8 rewrites of it (bench/experiments/int8_trunk.py), side by side:
// every iteration runs all variants on the same batch. Also checks batch independence: row 0 alone
// against row 0 inside a batch of other rows. An experiment, see README.md.
//   dotnet run bench/experiments/Int8Trunk.cs -- models/default/trunk.onnx /tmp/trunk-rowwise.onnx /tmp/trunk-tensor.onnx
#:package Microsoft.ML.OnnxRuntime@1.31.1
#:property ManagePackageVersionsCentrally=false
using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

string[] files = args;
using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
InferenceSession[] sessions = [.. files.Select(f => new InferenceSession(f, options))];
string lastLayer = sessions[0].OutputMetadata.Keys.Last();
var random = new Random(0);
const int Tokens = 16;

float[] Run(InferenceSession session, long[] ids, int rows)
{
    using var inputIds = OrtValue.CreateTensorValueFromMemory(ids, [rows, Tokens]);
    using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, rows * Tokens).ToArray(), [rows, Tokens]);
    using var types = OrtValue.CreateTensorValueFromMemory(new long[rows * Tokens], [rows, Tokens]);
    using var runOptions = new RunOptions();
    using var outputs = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [inputIds, mask, types], [lastLayer]);
    return outputs[0].GetTensorDataAsSpan<float>().ToArray();
}

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);

Console.WriteLine($"| batch | {string.Join(" | ", files.Skip(1).Select(f => $"{Path.GetFileName(f)}: speed-up over float32"))} | {string.Join(" | ", files.Skip(1).Select(f => $"{Path.GetFileName(f)}: max abs diff vs float32"))} |");
Console.WriteLine($"| ---: |{string.Concat(Enumerable.Repeat(" ---: |", 2 * (files.Length - 1)))}");
foreach (int batch in new[] { 1, 8, 32 })
{
    long[] ids = [.. Enumerable.Range(0, batch * Tokens).Select(i => i % Tokens == 0 ? 101L : random.Next(1000, 30000))];
    var ratios = new List<double>[files.Length];
    var diffs = new float[files.Length];
    float[] reference = Run(sessions[0], ids, batch);
    for (int v = 1; v < files.Length; v++)
    {
        ratios[v] = [];
        diffs[v] = Run(sessions[v], ids, batch).Zip(reference).Max(p => Math.Abs(p.First - p.Second));
    }

    int iterations = Math.Max(20, 400 / batch);
    for (int it = 0; it < iterations + 5; it++)
    {
        var times = new double[files.Length];
        for (int v = 0; v < files.Length; v++)
        {
            long start = Stopwatch.GetTimestamp();
            Run(sessions[v], ids, batch);
            times[v] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        for (int v = 1; it >= 5 && v < files.Length; v++)
        {
            ratios[v].Add(times[0] / times[v]);
        }
    }

    Console.WriteLine($"| {batch} | {string.Join(" | ", Enumerable.Range(1, files.Length - 1).Select(v => $"{Median(ratios[v]):F2}x"))} | {string.Join(" | ", Enumerable.Range(1, files.Length - 1).Select(v => $"{diffs[v]:G3}"))} |");
}

// Batch independence: the first row alone vs the same row next to 31 others (one louder than the rest).
long[] batchIds = [.. Enumerable.Range(0, 32 * Tokens).Select(i => i % Tokens == 0 ? 101L : random.Next(1000, 30000))];
for (int v = 0; v < files.Length; v++)
{
    float[] alone = Run(sessions[v], batchIds[..Tokens], 1);
    float[] together = Run(sessions[v], batchIds, 32)[..alone.Length];
    Console.WriteLine($"{Path.GetFileName(files[v])}: row 0 alone vs in a batch of 32, max abs diff {alone.Zip(together).Max(p => Math.Abs(p.First - p.Second)):G3}");
}
