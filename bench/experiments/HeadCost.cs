// What the heads of a bundle cost next to the trunk's layers, at batch 1, 8 and 32 (an experiment,
// see README.md). Every iteration runs, in rotating order on the same tensors: the trunk alone; the
// trunk + every head; the trunk + as many minimal heads (one Gather and one small MatMul: what a
// session run costs by itself); the trunk + every head with 4-bit weights (an eighth of the weight
// bytes); and one whole single-task model per task (the benchmark's (b)). Each head run is timed on
// its own; a variant's figure is the sum of its heads' medians (subtracting two noisy totals is not).
//   PYTHONPATH=training /usr/bin/python3 bench/experiments/head_variants.py models/default /tmp/head-variants
//   dotnet run bench/experiments/HeadCost.cs -- models/default bench/baselines/default /tmp/head-variants 16
#:package Microsoft.ML.OnnxRuntime@1.31.1
#:property ManagePackageVersionsCentrally=false
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string bundle = args[0], baselines = args[1], variants = args[2];
int tokens = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 16;

using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
JsonElement manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(bundle, "manifest.json"))).RootElement;
var tasks = manifest.GetProperty("tasks").EnumerateArray()
    .Select(t => (Name: t.GetProperty("name").GetString()!, Layer: t.GetProperty("branchLayer").GetInt32(), File: t.GetProperty("head").GetProperty("file").GetString()!))
    .ToArray();
string[] hiddenNames = [.. tasks.Select(t => $"hidden_{t.Layer}").Distinct().Order()];
int trunkLayers = manifest.GetProperty("trunk").GetProperty("numLayers").GetInt32();
using var trunk = new InferenceSession(Path.Combine(bundle, "trunk.onnx"), options);
InferenceSession[] heads = [.. tasks.Select(t => new InferenceSession(Path.Combine(bundle, t.File), options))];
InferenceSession[] minimal = [.. tasks.Select(_ => new InferenceSession(Path.Combine(variants, "minimal.onnx"), options))];
InferenceSession[] fourBit = [.. tasks.Select(t => new InferenceSession(Path.Combine(variants, "heads-4bit", t.Name + ".onnx"), options))];
InferenceSession[] wholeModels = [.. tasks.Select(t => new InferenceSession(Path.Combine(baselines, t.Name + ".onnx"), options))];
using var runOptions = new RunOptions();
string[] trunkInputs = ["input_ids", "attention_mask", "token_type_ids"];

Console.WriteLine($"{Path.GetFileName(Path.GetFullPath(bundle))}: {tasks.Length} heads; {tokens} tokens per row; {Environment.ProcessorCount} logical CPUs; medians of rotating iterations (ms per batch)");
Console.WriteLine();
Console.WriteLine("| batch | trunk (c) | one trunk layer = (c) / layers | N heads | N minimal heads | N heads, 4-bit weights | N whole models (b) | heads in layers | budget for cost <= 10% | budget for <= 1.5x (c) |");
Console.WriteLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
var perHead = new Dictionary<int, double[]>();
foreach ((int rows, int iterations) in new[] { (1, 400), (8, 80), (32, 24) })
{
    var random = new Random(rows);
    long[] ids = [.. Enumerable.Range(0, rows * tokens).Select(i => i % tokens == 0 ? 101L : random.Next(1000, 30000))];
    using var inputIds = OrtValue.CreateTensorValueFromMemory(ids, [rows, tokens]);
    using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, rows * tokens).ToArray(), [rows, tokens]);
    using var tokenTypes = OrtValue.CreateTensorValueFromMemory(new long[rows * tokens], [rows, tokens]);
    OrtValue[] trunkValues = [inputIds, mask, tokenTypes];
    List<double> trunkTimes = [], wholeTimes = [];
    // [variant][head]: heads, minimal heads, 4-bit heads.
    var headTimes = Enumerable.Range(0, 3).Select(_ => tasks.Select(_ => new List<double>()).ToArray()).ToArray();

    // The trunk, then each of `sessions` on its hidden states, each head's time into `record`.
    double TrunkAnd(InferenceSession[]? sessions, List<double>[]? record)
    {
        long start = Stopwatch.GetTimestamp();
        using var hidden = trunk.Run(runOptions, trunkInputs, trunkValues, hiddenNames);
        for (int t = 0; sessions is not null && t < sessions.Length; t++)
        {
            long headStart = Stopwatch.GetTimestamp();
            OrtValue[] inputs = [hidden[Array.IndexOf(hiddenNames, $"hidden_{tasks[t].Layer}")], mask];
            sessions[t].Run(runOptions, ["hidden_states", "attention_mask"], inputs, ["logits"]).Dispose();
            record?[t].Add(Stopwatch.GetElapsedTime(headStart).TotalMilliseconds);
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    double Whole()
    {
        long start = Stopwatch.GetTimestamp();
        foreach (InferenceSession model in wholeModels)
        {
            model.Run(runOptions, trunkInputs, trunkValues, ["logits"]).Dispose();
        }

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    for (int i = 0; i < iterations + 3; i++)
    {
        bool measured = i >= 3;
        for (int k = 0; k < 5; k++)
        {
            int variant = (i + k) % 5;
            double ms = variant switch
            {
                0 => TrunkAnd(null, null),
                1 => TrunkAnd(heads, measured ? headTimes[0] : null),
                2 => TrunkAnd(minimal, measured ? headTimes[1] : null),
                3 => TrunkAnd(fourBit, measured ? headTimes[2] : null),
                _ => Whole(),
            };
            // The head variants count by their heads' own times (headTimes), not by their totals.
            if (measured)
            {
                (variant == 0 ? trunkTimes : variant == 4 ? wholeTimes : null)?.Add(ms);
            }
        }
    }

    double c = Median(trunkTimes), b = Median(wholeTimes);
    double layer = c / trunkLayers;
    double[][] medians = [.. headTimes.Select(variant => variant.Select(Median).ToArray())];
    double headsMs = medians[0].Sum(), minimalMs = medians[1].Sum(), fourBitMs = medians[2].Sum();
    perHead[rows] = medians[0];
    Console.WriteLine($"| {rows} | {c:F3} | {layer:F3} | {headsMs:F3} | {minimalMs:F3} | {fourBitMs:F3} | {b:F2} | {headsMs / layer:F1} | {0.10 * b - c:F3} | {0.5 * c:F3} |");
}

Console.WriteLine();
Console.WriteLine("Each head after the trunk, median ms:");
Console.WriteLine();
Console.WriteLine("| head | batch 1 | batch 8 | batch 32 |");
Console.WriteLine("| --- | ---: | ---: | ---: |");
for (int t = 0; t < tasks.Length; t++)
{
    Console.WriteLine($"| {tasks[t].Name} | {string.Join(" | ", perHead.Keys.Select(r => $"{perHead[r][t]:F3}"))} |");
}

static double Median(List<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length == 0 ? double.NaN : sorted[sorted.Length / 2];
}
