using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Core.Tokenization;

// Serving cost of one merged bundle (trunk once + N heads) against N whole single-task models
// (one model per task, the deployment it replaces) and the trunk alone (the floor). One process,
// the same machine, the same dev-set utterances, the same intra-op threads; every measured
// iteration runs all configurations on the same batch back to back, so noise hits them alike.
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
if (args.Length > 0 && args[0] == "gpu")
{
    return await GpuCheck.RunAsync(args[1..]); // bench/gpu/run.sh: CUDA placement, device memory, parity, throughput
}

var options = BenchOptions.Parse(args);
string[] glue = ["sst2", "cola", "mrpc", "stsb", "rte", "wnli", "qnli", "mnli", "qqp"];
// No per-head memory cap: the benchmark runs a whole batch at full length in one pass, past the
// service's Batching:MaxPassTokens (512 on a CPU) that bounds what a head's run asks for there;
// a full-width tagging head's attention at 32 rows of 128 tokens alone needs 24 MiB in one piece.
var guards = new HeadGuardOptions { MaxRunMemoryMiB = -1 };

using var sessions = new OnnxSessionFactory(
    new InferenceOptions { Device = InferenceDevice.Cpu, IntraOpThreads = options.Threads },
    NullLogger<OnnxSessionFactory>.Instance, guards);
using var serving = new ServingParts(sessions);
await serving.Registry.LoadAsync(options.Bundle);
MultiTaskEngine engine = serving.Engine;

// Variant: the same bundle with Batching:ParallelHeads on (heads of a batch run concurrently).
using var parallelSessions = new OnnxSessionFactory(
    new InferenceOptions { Device = InferenceDevice.Cpu, IntraOpThreads = options.Threads },
    NullLogger<OnnxSessionFactory>.Instance, guards);
using var parallelServing = new ServingParts(parallelSessions, batching: new BatchingOptions { ParallelHeads = true });
await parallelServing.Registry.LoadAsync(options.Bundle);
MultiTaskEngine parallelEngine = parallelServing.Engine;
// Variants: the same bundle at lower graph optimisation levels (is ORT_ENABLE_ALL worth it?).
var levelEngines = new Dictionary<GraphOptimization, (OnnxSessionFactory Sessions, ServingParts Serving)>();
foreach (GraphOptimization level in new[] { GraphOptimization.Basic, GraphOptimization.Extended })
{
    var levelSessions = new OnnxSessionFactory(
        new InferenceOptions { Device = InferenceDevice.Cpu, IntraOpThreads = options.Threads, GraphOptimization = level },
        NullLogger<OnnxSessionFactory>.Instance, guards);
    var levelServing = new ServingParts(levelSessions);
    await levelServing.Registry.LoadAsync(options.Bundle);
    levelEngines[level] = (levelSessions, levelServing);
}

BundleSnapshot bundle = engine.Current!;
// The trained heads, which have one-model-per-task baselines (not the embedding or tasks from examples).
TaskDefinition[] tasks = [.. bundle.Tasks.Where(t => t.Kind != EmbeddingKind.Instance && t.Kind != ExamplesKind.Instance)];
string[] glueTasks = [.. tasks.Where(t => glue.Contains(t.Name)).Select(t => t.Name)];

// Baselines: one whole single-task model per bundle task.
JsonNode index = JsonNode.Parse(File.ReadAllText(Path.Combine(options.Baselines, "baselines.json")))!;
var baselines = new List<(TaskDefinition Task, InferenceSession Session)>();
foreach (TaskDefinition task in tasks)
{
    string file = index["tasks"]?[task.Name]?["file"]?.GetValue<string>()
        ?? throw new InvalidOperationException($"{options.Baselines}/baselines.json has no model for task '{task.Name}'");
    baselines.Add((task, sessions.CreateSession(Path.Combine(options.Baselines, file))));
}

int baselineLayers = index["layers"]!.GetValue<int>();

// Variant: heads in single-threaded sessions, run concurrently (one head per core).
using var singleThreaded = new OnnxSessionFactory(
    new InferenceOptions { Device = InferenceDevice.Cpu, IntraOpThreads = 1 },
    NullLogger<OnnxSessionFactory>.Instance, guards);
Dictionary<string, HeadRunner> oneThreadHeads = tasks.ToDictionary(t => t.Name, t => new HeadRunner(singleThreaded.CreateSession(t.Head.FullPath), t, singleThreaded));

// Utterances: the dev sets of the bundle's tasks, round-robin so every batch mixes tasks.
List<ClassifyInput> pool = Utterances.Load(options.Data, tasks, options.PerTask);
Console.WriteLine($"bundle {bundle.ModelId}: {tasks.Length} tasks ({string.Join(", ", tasks.Select(t => $"{t.Name}@L{t.BranchLayer}"))}); GLUE: {string.Join(", ", glueTasks)}");
static string Matmuls(bool int8) => int8 ? " (int8 weight matmuls)" : "";
bool baselinesInt8 = index["int8Matmuls"]?.GetValue<bool>() ?? false;
Console.WriteLine($"trunk {bundle.Bundle.Manifest.Trunk.NumLayers} layers{Matmuls(bundle.Bundle.Manifest.Trunk.Int8Matmuls)}, baselines {baselineLayers} layers{Matmuls(baselinesInt8)}; {pool.Count} dev utterances ({pool.Count(p => p.IsPair)} pairs); intra-op threads {(options.Threads == 0 ? "ORT default" : options.Threads)}");
Console.WriteLine($"machine: {Machine.Describe()}");

var report = new List<Row>();
var allocatedPerBatch = new Dictionary<int, double>();
var partsBySize = new Dictionary<int, Dictionary<string, List<double>>>();
foreach (int size in options.Sizes)
{
    var runs = new Dictionary<string, List<double>>
    {
        ["a"] = [], ["a-glue"] = [], ["a-parallel"] = [], ["b"] = [], ["b-glue"] = [], ["c"] = [],
        ["n-a"] = [], ["n-a-glue"] = [], ["n-b"] = [], ["n-b-glue"] = [], ["n-c"] = [], ["n-a-1t"] = [], ["n-a-par"] = [],
        ["n-a-basic"] = [], ["n-a-extended"] = [],
    };
    var allocations = new List<long>();
    var parts = partsBySize[size] = [];
    int cursor = 0;
    var total = Stopwatch.StartNew();
    int iteration = 0;
    for (; iteration < options.MaxIterations; iteration++)
    {
        bool warmUp = iteration < options.WarmUp;
        if (!warmUp && iteration - options.WarmUp >= options.MinIterations && total.Elapsed.TotalSeconds > options.SecondsPerSize)
        {
            break;
        }

        ClassifyInput[] batch = [.. Enumerable.Range(0, size).Select(i => pool[(cursor + i) % pool.Count])];
        cursor += size;

        // (a) the merged bundle: trunk once per input kind, every head of that kind.
        (double a, long aBytes) = await TimeAndAllocations(() => engine.ClassifyAsync(batch, null));
        double aParallel = await Time(() => parallelEngine.ClassifyAsync(batch, null));
        double aGlue = await Time(() => ClassifyGlueAsync(batch));

        // (b) one whole model per task, each on the inputs of its kind.
        double b = 0, bGlue = 0;
        foreach ((TaskDefinition task, InferenceSession session) in baselines)
        {
            ClassifyInput[] mine = [.. batch.Where(i => i.IsPair == (task.Input == TaskInputKind.Pair))];
            if (mine.Length == 0)
            {
                continue;
            }

            double ms = TimeSync(() => Passes.RunBaseline(session, bundle, mine, task.Input));
            b += ms;
            if (glueTasks.Contains(task.Name))
            {
                bGlue += ms;
            }
        }

        // (c) the trunk alone: the same passes the engine makes, without heads.
        double c = TimeSync(() => Passes.RunTrunk(bundle, batch, tasks));

        // Every task on every utterance (the method's accounting): one padded batch, the trunk
        // once + all N heads on its hidden states, against all N whole models on the same tensors.
        TokenBatch padded = TokenBatch.Pad([.. batch.Select(i => bundle.Encoder.Encode(i.Text, i.TextPair))], bundle.Encoder.PaddingTokenId);
        double nAll = TimeSync(() => RunTrunkAndHeads(bundle, padded, tasks, parts: warmUp ? null : parts));
        double nGlue = TimeSync(() => RunTrunkAndHeads(bundle, padded, [.. tasks.Where(t => glueTasks.Contains(t.Name))]));
        double nTrunk = TimeSync(() => RunTrunkAndHeads(bundle, padded, tasks, headsToo: false));
        double nOneThread = TimeSync(() => RunTrunkAndConcurrentHeads(bundle, padded, tasks, oneThreadHeads));
        double nParallel = TimeSync(() => RunTrunkAndConcurrentHeads(bundle, padded, tasks, bundle.Heads));
        double nBasic = TimeSync(() => RunTrunkAndHeads(levelEngines[GraphOptimization.Basic].Serving.Engine.Current!, padded, tasks));
        double nExtended = TimeSync(() => RunTrunkAndHeads(levelEngines[GraphOptimization.Extended].Serving.Engine.Current!, padded, tasks));
        double mAll = 0, mGlue = 0;
        foreach ((TaskDefinition task, InferenceSession session) in baselines)
        {
            double ms = TimeSync(() => Passes.RunModel(session, padded));
            mAll += ms;
            if (glueTasks.Contains(task.Name))
            {
                mGlue += ms;
            }
        }

        if (!warmUp)
        {
            runs["a"].Add(a);
            allocations.Add(aBytes);
            runs["a-parallel"].Add(aParallel);
            runs["a-glue"].Add(aGlue);
            runs["b"].Add(b);
            runs["b-glue"].Add(bGlue);
            runs["c"].Add(c);
            runs["n-a"].Add(nAll);
            runs["n-a-glue"].Add(nGlue);
            runs["n-c"].Add(nTrunk);
            runs["n-a-1t"].Add(nOneThread);
            runs["n-a-par"].Add(nParallel);
            runs["n-a-basic"].Add(nBasic);
            runs["n-a-extended"].Add(nExtended);
            runs["n-b"].Add(mAll);
            runs["n-b-glue"].Add(mGlue);
        }
    }

    foreach ((string name, List<double> values) in runs)
    {
        report.Add(new Row(name, size, values));
    }

    Console.Error.WriteLine($"batch {size}: {iteration - options.WarmUp} measured iterations in {total.Elapsed.TotalSeconds:0.0} s");
    allocatedPerBatch[size] = allocations.Count == 0 ? 0 : allocations.Average();
}

string table = Report.Markdown(report, options.Sizes, tasks.Length, glueTasks.Length)
    + Environment.NewLine + Report.Parts(partsBySize, options.Sizes, tasks)
    + $"{Environment.NewLine}Managed allocation of (a), per batch (GC.GetTotalAllocatedBytes): {string.Join(", ", options.Sizes.Select(s => $"batch {s}: {allocatedPerBatch[s] / 1024:0.0} KiB ({allocatedPerBatch[s] / 1024 / s:0.0} KiB/utterance)"))}{Environment.NewLine}";
Console.WriteLine();
Console.WriteLine(table);
if (options.Out is { } outFile)
{
    File.WriteAllText(outFile, table);
}

foreach ((_, InferenceSession session) in baselines)
{
    session.Dispose();
}

foreach ((OnnxSessionFactory levelSessions, ServingParts levelServing) in levelEngines.Values)
{
    levelServing.Dispose();
    levelSessions.Dispose();
}

return 0;

// The GLUE tasks of each input kind as one request per kind, run together in one engine call.
async Task<IReadOnlyList<RequestPredictions>> ClassifyGlueAsync(ClassifyInput[] batch)
{
    var prepared = new List<PreparedRequest>(2);
    try
    {
        foreach (TaskInputKind kind in new[] { TaskInputKind.Single, TaskInputKind.Pair })
        {
            ClassifyInput[] inputs = [.. batch.Where(i => i.IsPair == (kind == TaskInputKind.Pair))];
            string[] names = [.. tasks.Where(t => t.Input == kind && glueTasks.Contains(t.Name)).Select(t => t.Name)];
            if (inputs.Length > 0 && names.Length > 0)
            {
                prepared.Add(engine.Prepare(new ClassifyQuery(inputs, names)));
            }
        }

        return await engine.RunAsync(prepared, CancellationToken.None);
    }
    finally
    {
        prepared.ForEach(p => p.Dispose());
    }
}

static async Task<double> Time<T>(Func<Task<T>> action)
{
    long start = Stopwatch.GetTimestamp();
    await action();
    return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}

static async Task<(double Ms, long Bytes)> TimeAndAllocations<T>(Func<Task<T>> action)
{
    long before = GC.GetTotalAllocatedBytes(precise: false);
    double ms = await Time(action);
    return (ms, GC.GetTotalAllocatedBytes(precise: false) - before);
}

static double TimeSync(Action action)
{
    long start = Stopwatch.GetTimestamp();
    action();
    return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
}

// With `parts`, records the milliseconds of the trunk pass ("trunk") and of each head (by task).
static void RunTrunkAndHeads(BundleSnapshot bundle, TokenBatch batch, TaskDefinition[] tasks, bool headsToo = true, Dictionary<string, List<double>>? parts = null)
{
    using var runOptions = new RunOptions();
    int[] layers = [.. tasks.SelectMany(t => t.TrunkLayers).Distinct().Order()];
    using OrtValue mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
    long start = Stopwatch.GetTimestamp();
    using TrunkOutputs hidden = bundle.Trunk.Run(batch, mask, layers, runOptions);
    Record("trunk", start);
    if (headsToo)
    {
        foreach (TaskDefinition task in tasks)
        {
            start = Stopwatch.GetTimestamp();
            bundle.Heads[task.Name].Run(hidden, mask, (int)batch.Shape[0], (int)batch.Shape[1], maxRunMs: 0, CancellationToken.None).Dispose();
            Record(task.Name, start);
        }
    }

    void Record(string part, long since)
    {
        if (parts is not null)
        {
            (parts.TryGetValue(part, out List<double>? list) ? list : parts[part] = []).Add(Stopwatch.GetElapsedTime(since).TotalMilliseconds);
        }
    }
}

static void RunTrunkAndConcurrentHeads(BundleSnapshot bundle, TokenBatch batch, TaskDefinition[] tasks, IReadOnlyDictionary<string, HeadRunner> heads)
{
    using var runOptions = new RunOptions();
    int[] layers = [.. tasks.SelectMany(t => t.TrunkLayers).Distinct().Order()];
    using OrtValue mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
    using TrunkOutputs hidden = bundle.Trunk.Run(batch, mask, layers, runOptions);
    Parallel.ForEach(tasks, task => heads[task.Name].Run(hidden, mask, (int)batch.Shape[0], (int)batch.Shape[1], maxRunMs: 0, CancellationToken.None).Dispose());
}

internal sealed record Row(string Config, int BatchSize, List<double> LatenciesMs)
{
    public double Mean => LatenciesMs.Count == 0 ? double.NaN : LatenciesMs.Average();

    public double Percentile(double p)
    {
        if (LatenciesMs.Count == 0)
        {
            return double.NaN;
        }

        double[] sorted = [.. LatenciesMs.Order()];
        int rank = (int)Math.Ceiling(p / 100.0 * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    public double UtterancesPerSecond => BatchSize * 1000.0 / Mean;
}

internal static partial class Report
{
    private static readonly (string Key, string Label)[] Configs =
    [
        ("n-a", "(a) merged bundle: trunk once + all N heads"),
        ("n-b", "(b) N whole single-task models"),
        ("n-c", "(c) trunk alone (floor)"),
        ("n-a-par", "(a) variant: heads run concurrently"),
        ("n-a-1t", "(a) variant: 1-thread head sessions, run concurrently"),
        ("n-a-basic", "(a) variant: graph optimisation Basic"),
        ("n-a-extended", "(a) variant: graph optimisation Extended"),
        ("n-a-glue", "(a) merged bundle, GLUE heads only"),
        ("n-b-glue", "(b) one whole model per GLUE task"),
        ("a", "(a, served) engine API, tasks that fit each input"),
        ("a-parallel", "(a', served) same, heads run concurrently"),
        ("b", "(b, served) per-task models on the inputs they fit"),
        ("c", "(c, served) trunk alone, one pass per input kind"),
        ("a-glue", "(a, served) engine API, GLUE tasks only"),
        ("b-glue", "(b, served) GLUE models on the inputs they fit"),
    ];

    public static string Markdown(List<Row> rows, int[] sizes, int taskCount, int glueCount)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| configuration | batch | utterances/s | p50 ms | p99 ms | iterations |");
        sb.AppendLine("| --- | ---: | ---: | ---: | ---: | ---: |");
        foreach ((string key, string label) in Configs)
        {
            foreach (int size in sizes)
            {
                Row row = rows.Single(r => r.Config == key && r.BatchSize == size);
                sb.AppendLine($"| {label} | {size} | {row.UtterancesPerSecond:0.0} | {row.Percentile(50):0.00} | {row.Percentile(99):0.00} | {row.LatenciesMs.Count} |");
            }
        }

        sb.AppendLine();
        sb.AppendLine($"| batch | cost (a)/(b), {taskCount} tasks | saved | cost (a)/(b), {glueCount} GLUE tasks | (a)/(c) | served: (a)/(b) | served GLUE: (a)/(b) | served: (a)/(c) | served: (a')/(a) | concurrent heads / (a) | 1-thread concurrent heads / (a) | Basic / All | Extended / All |");
        sb.AppendLine("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        foreach (int size in sizes)
        {
            // Median over iterations of the per-iteration ratio: both sides ran back to back on the
            // same batch, so a burst of load from elsewhere on the machine cancels out.
            double Ratio(string x, string y)
            {
                List<double> xs = rows.Single(r => r.Config == x && r.BatchSize == size).LatenciesMs;
                List<double> ys = rows.Single(r => r.Config == y && r.BatchSize == size).LatenciesMs;
                double[] ratios = [.. xs.Zip(ys, (a, b) => a / b).Order()];
                return ratios.Length == 0 ? double.NaN : ratios.Length % 2 == 1 ? ratios[ratios.Length / 2] : (ratios[(ratios.Length / 2) - 1] + ratios[ratios.Length / 2]) / 2;
            }

            double all = Ratio("n-a", "n-b");
            sb.AppendLine($"| {size} | {all:P1} | {1 - all:P1} | {Ratio("n-a-glue", "n-b-glue"):P1} | {Ratio("n-a", "n-c"):0.00}x "
                + $"| {Ratio("a", "b"):P1} | {Ratio("a-glue", "b-glue"):P1} | {Ratio("a", "c"):0.00}x | {Ratio("a-parallel", "a"):0.00}x | {Ratio("n-a-par", "n-a"):0.00}x | {Ratio("n-a-1t", "n-a"):0.00}x | {Ratio("n-a-basic", "n-a"):0.00}x | {Ratio("n-a-extended", "n-a"):0.00}x |");
        }

        sb.AppendLine();
        sb.AppendLine("Cost ratios = median over iterations of time(x)/time(y), x and y run back to back on the same batch (time per batch is the inverse of throughput). Utterances/s = batch size / mean time per batch.");
        return sb.ToString();
    }
}

internal static partial class Report
{
    /// <summary>Where the time of (a) goes: mean milliseconds per batch of the trunk pass and of each head, and their share.</summary>
    public static string Parts(Dictionary<int, Dictionary<string, List<double>>> partsBySize, int[] sizes, TaskDefinition[] tasks)
    {
        var sb = new StringBuilder();
        sb.AppendLine("Where the time of (a) goes (mean ms per batch, share of the sum of the parts):");
        sb.AppendLine();
        sb.AppendLine($"| part | {string.Join(" | ", sizes.Select(s => $"batch {s}"))} |");
        sb.AppendLine($"| --- |{string.Concat(sizes.Select(_ => " ---: |"))}");
        foreach (string part in tasks.Select(t => t.Name).Prepend("trunk"))
        {
            string label = part == "trunk" ? "trunk" : $"{part} ({tasks.Single(t => t.Name == part).Kind.Name})";
            sb.Append($"| {label} |");
            foreach (int size in sizes)
            {
                Dictionary<string, List<double>> parts = partsBySize[size];
                double total = parts.Values.Sum(v => v.Average());
                double mean = parts[part].Average();
                sb.Append($" {mean:0.000} ({mean / total:P1}) |");
            }

            sb.AppendLine();
        }

        return sb.ToString();
    }
}

internal static class Utterances
{
    public static List<ClassifyInput> Load(string dataRoot, IReadOnlyList<TaskDefinition> tasks, int perTask)
    {
        var perTaskLists = new List<List<ClassifyInput>>();
        foreach (TaskDefinition task in tasks)
        {
            string file = Path.Combine(dataRoot, task.Name, "dev.jsonl");
            if (!File.Exists(file))
            {
                Console.Error.WriteLine($"warning: {file} not found; task {task.Name} contributes no utterances");
                continue;
            }

            var list = new List<ClassifyInput>();
            foreach (string line in File.ReadLines(file))
            {
                if (list.Count >= perTask)
                {
                    break;
                }

                using JsonDocument doc = JsonDocument.Parse(line);
                JsonElement root = doc.RootElement;
                string? text = root.TryGetProperty("text", out JsonElement t) ? t.GetString()
                    : root.TryGetProperty("tokens", out JsonElement tokens) ? string.Join(' ', tokens.EnumerateArray().Select(x => x.GetString())) : null;
                string? pair = root.TryGetProperty("text_pair", out JsonElement p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null;
                if (string.IsNullOrWhiteSpace(text) || (task.Input == TaskInputKind.Pair && string.IsNullOrWhiteSpace(pair)))
                {
                    continue;
                }

                list.Add(new ClassifyInput(text, task.Input == TaskInputKind.Pair ? pair : null));
            }

            perTaskLists.Add(list);
        }

        var pool = new List<ClassifyInput>();
        for (int i = 0; perTaskLists.Any(l => i < l.Count); i++)
        {
            pool.AddRange(perTaskLists.Where(l => i < l.Count).Select(l => l[i]));
        }

        return pool.Count > 0 ? pool : throw new InvalidOperationException($"no dev utterances under {dataRoot}");
    }
}

internal sealed record BenchOptions(string Bundle, string Baselines, string Data, int Threads, int[] Sizes, double SecondsPerSize,
    int MinIterations, int MaxIterations, int WarmUp, int PerTask, string? Out)
{
    public static BenchOptions Parse(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            map[args[i].TrimStart('-')] = args[i + 1];
        }

        string Get(string key, string fallback) => map.TryGetValue(key, out string? v) ? v : fallback;
        return new BenchOptions(
            Get("bundle", "models/default"),
            Get("baselines", "bench/baselines"),
            Get("data", "../shared/data"),
            int.Parse(Get("threads", "0"), CultureInfo.InvariantCulture),
            [.. Get("sizes", "1,8,32").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))],
            double.Parse(Get("seconds", "20"), CultureInfo.InvariantCulture),
            int.Parse(Get("min-iterations", "10"), CultureInfo.InvariantCulture),
            int.Parse(Get("max-iterations", "2000"), CultureInfo.InvariantCulture),
            int.Parse(Get("warmup", "3"), CultureInfo.InvariantCulture),
            int.Parse(Get("per-task", "64"), CultureInfo.InvariantCulture),
            map.TryGetValue("out", out string? o) ? o : null);
    }
}
