// How the trunk and the heads of a bundle could be run, side by side at one batch size: every
// iteration runs all variants on the same batch. An experiment, see README.md.
//   dotnet run bench/experiments/HeadSessions.cs -- models/default /tmp/heads-merged.onnx 1 16
// Variants: the service's way (a session per head, each with its own one-thread pool); all heads as
// one merged graph (bench/experiments/merge_heads.py), every output or only the first task's; and the
// service's sessions on one global intra-op pool of two threads instead of a pool per session.
#:package Microsoft.ML.OnnxRuntime@1.31.1
#:property ManagePackageVersionsCentrally=false
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

string bundle = args[0], mergedFile = args[1];
int rows = int.Parse(args[2], CultureInfo.InvariantCulture), tokens = int.Parse(args[3], CultureInfo.InvariantCulture);
int iterations = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : rows == 1 ? 400 : 60;

// The global pool must exist before the first session; sessions opt in with DisablePerSessionThreads.
var environment = new EnvironmentCreationOptions { threadOptions = new OrtThreadingOptions { GlobalIntraOpNumThreads = 2, GlobalInterOpNumThreads = 1 } };
OrtEnv.CreateInstanceWithOptions(ref environment);
using var perSession = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
using var globalPool = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
globalPool.DisablePerSessionThreads();

var tasks = JsonDocument.Parse(File.ReadAllText(Path.Combine(bundle, "manifest.json"))).RootElement.GetProperty("tasks").EnumerateArray()
    .Select(t => (Name: t.GetProperty("name").GetString()!, Layer: t.GetProperty("branchLayer").GetInt32(), File: t.GetProperty("head").GetProperty("file").GetString()!))
    .ToList();
string[] hiddenNames = [.. tasks.Select(t => $"hidden_{t.Layer}").Distinct().Order()];
(InferenceSession Trunk, InferenceSession[] Heads) Open(SessionOptions options) =>
    (new InferenceSession(Path.Combine(bundle, "trunk.onnx"), options), [.. tasks.Select(t => new InferenceSession(Path.Combine(bundle, t.File), options))]);
var service = Open(perSession);
var pooled = Open(globalPool);
using var merged = new InferenceSession(mergedFile, perSession);
string[] mergedInputs = [.. merged.InputNames];
string[] mergedOutputs = [.. tasks.Select(t => t.Name + "/logits")];

var random = new Random(0);
using var inputIds = OrtValue.CreateTensorValueFromMemory(Enumerable.Range(0, rows * tokens).Select(i => i % tokens == 0 ? 101L : random.Next(1000, 30000)).ToArray(), [rows, tokens]);
using var mask = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, rows * tokens).ToArray(), [rows, tokens]);
using var tokenTypes = OrtValue.CreateTensorValueFromMemory(new long[rows * tokens], [rows, tokens]);
using var runOptions = new RunOptions();

IDisposableReadOnlyCollection<OrtValue> RunTrunk(InferenceSession trunk) =>
    trunk.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [inputIds, mask, tokenTypes], hiddenNames);
OrtValue Hidden(IDisposableReadOnlyCollection<OrtValue> hidden, string name) => hidden[Array.IndexOf(hiddenNames, name)];

List<float[]> Separate((InferenceSession Trunk, InferenceSession[] Heads) model)
{
    using var hidden = RunTrunk(model.Trunk);
    var logits = new List<float[]>();
    for (int t = 0; t < tasks.Count; t++)
    {
        using var output = model.Heads[t].Run(runOptions, ["hidden_states", "attention_mask"], [Hidden(hidden, $"hidden_{tasks[t].Layer}"), mask], ["logits"]);
        logits.Add(output[0].GetTensorDataAsSpan<float>().ToArray());
    }

    return logits;
}

List<float[]> Merged(string[] outputs)
{
    using var hidden = RunTrunk(service.Trunk);
    OrtValue[] feeds = [.. mergedInputs.Select(name => name == "attention_mask" ? mask : Hidden(hidden, name))];
    using var result = merged.Run(runOptions, mergedInputs, feeds, outputs);
    return [.. result.Select(v => v.GetTensorDataAsSpan<float>().ToArray())];
}

var variants = new (string Name, Func<List<float[]>> Run)[]
{
    ("session per head (the service)", () => Separate(service)),
    ("one merged graph, every output", () => Merged(mergedOutputs)),
    ("one merged graph, first output only", () => Merged([mergedOutputs[0]])),
    ("session per head, global 2-thread pool", () => Separate(pooled)),
};
List<float[]> reference = Separate(service);
float difference = reference.Zip(Merged(mergedOutputs)).Concat(reference.Zip(Separate(pooled)))
    .Max(pair => pair.First.Zip(pair.Second).Max(v => Math.Abs(v.First - v.Second)));

var times = variants.Select(_ => new List<double>()).ToArray();
for (int iteration = 0; iteration < iterations + 10; iteration++)
{
    for (int k = 0; k < variants.Length; k++)
    {
        int v = (k + iteration) % variants.Length; // rotate the order: no variant always runs first
        long start = Stopwatch.GetTimestamp();
        variants[v].Run();
        if (iteration >= 10)
        {
            times[v].Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }
    }
}

static double Median(List<double> values) => values.Order().ElementAt(values.Count / 2);
Console.WriteLine($"{tasks.Count} heads, batch {rows} x {tokens} tokens, {iterations} iterations; largest output difference between variants {difference:G3}");
for (int v = 0; v < variants.Length; v++)
{
    Console.WriteLine($"| {variants[v].Name} | {Median(times[v]),8:F0} us | {Median(times[v]) / Median(times[0]):F2}x |");
}
