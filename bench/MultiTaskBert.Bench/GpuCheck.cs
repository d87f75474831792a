using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Core.Tokenization;

/// <summary>
/// `MultiTaskBert.Bench gpu ...`: the in-process part of bench/gpu/run.sh. On the device it checks
/// (1) every float node of the trunk and heads runs on CUDA (ONNX Runtime's profiler), (2) hidden
/// states stay in device memory between trunk and heads (IO binding), (3) GPU logits vs CPU logits
/// on parity.json's texts, then (4) measures utterances/s of the bundle, one model per task and the
/// trunk alone. With `--device cpu` the same steps run on the CPU (to check the script itself);
/// the checks that need CUDA then say so and count as not run, never as passed.
/// </summary>
internal static class GpuCheck
{
    // The same graphs on two devices differ only in arithmetic order and CUDA's fused kernels.
    private const double SameGraphsTolerance = 2e-2;

    public static async Task<int> RunAsync(string[] args)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            map[args[i].TrimStart('-')] = args[i + 1];
        }

        string Get(string key, string fallback) => map.TryGetValue(key, out string? v) ? v : fallback;
        string bundleDir = Get("bundle", "models/default");
        string baselinesDir = Get("baselines", "");
        string data = Get("data", "../shared/data");
        bool cuda = Get("device", "cuda") == "cuda";
        int[] sizes = [.. Get("sizes", "1,8,32,64").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture))];
        double seconds = double.Parse(Get("seconds", "10"), CultureInfo.InvariantCulture);
        string work = Get("work", Path.Combine(Path.GetTempPath(), "mtbert-gpu-check"));
        var report = new StringBuilder();
        var failures = new List<string>();
        void Say(string line)
        {
            Console.WriteLine(line);
            report.AppendLine(line);
        }

        using var sessions = new OnnxSessionFactory(
            new InferenceOptions { Device = cuda ? InferenceDevice.Cuda : InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
        using var cpuSessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
        using var cpuFloat16Sessions = new OnnxSessionFactory(
            new InferenceOptions { Device = InferenceDevice.Cpu, Precision = GraphPrecision.Float16 }, NullLogger<OnnxSessionFactory>.Instance);
        using var serving = new ServingParts(sessions);
        using var cpuServing = new ServingParts(cpuSessions);
        using var cpuFloat16Serving = new ServingParts(cpuFloat16Sessions);
        MultiTaskEngine engine = serving.Engine, cpuEngine = cpuServing.Engine, cpuFloat16Engine = cpuFloat16Serving.Engine;
        await serving.Registry.LoadAsync(bundleDir);
        await cpuServing.Registry.LoadAsync(bundleDir);
        BundleSnapshot bundle = engine.Current!;
        bool hasFloat16 = bundle.Bundle.Float16TrunkPath is not null;
        if (hasFloat16)
        {
            await cpuFloat16Serving.Registry.LoadAsync(bundleDir);
        }

        Say($"# GPU check: {bundle.ModelId}");
        Say("");
        Say($"- device: {sessions.Target}; ONNX Runtime providers: {string.Join(", ", OrtEnv.Instance().GetAvailableProviders())}");
        Say($"- trunk served: {bundle.TrunkFile} (float16 graphs: {bundle.UsesFloat16Graphs}); machine: {Machine.Describe()}");

        // (1) Node placement.
        Say("");
        Say("## 1. Execution provider of every node (ONNX Runtime profiler, one run per graph)");
        Say("");
        IReadOnlyDictionary<string, IReadOnlyList<NodeRun>> placement = NodePlacement.ProfileBundle(sessions, bundle.Bundle, Path.Combine(work, "profiles"));
        Say("| graph | nodes run | on CUDA | on CPU: int64 shape arithmetic | on CPU: float (fallback) |");
        Say("| --- | ---: | ---: | ---: | ---: |");
        foreach ((string graph, IReadOnlyList<NodeRun> runs) in placement)
        {
            int onCuda = runs.Count(r => r.Provider == OnnxSessionFactory.CudaProviderName);
            IReadOnlyList<NodeRun> fallbacks = NodePlacement.FloatFallbacks(runs);
            Say($"| {graph} | {runs.Count} | {onCuda} | {runs.Count - onCuda - fallbacks.Count} | {fallbacks.Count}{(fallbacks.Count > 0 ? ": " + string.Join(", ", fallbacks.Take(8).Select(f => f.OpType)) : "")} |");
            if (cuda && fallbacks.Count > 0)
            {
                failures.Add($"{graph}: {fallbacks.Count} float nodes on the CPU");
            }
        }

        if (!cuda)
        {
            Say("(device cpu: every node is on the CPU; this check proves nothing here and is not counted)");
        }

        // (2) Hidden states in device memory, handed to the heads.
        Say("");
        Say("## 2. Hidden states trunk → heads (IO binding)");
        Say("");
        EncodedInput[] probe = [bundle.Encoder.Encode("wake me up at 7 am tomorrow", null)];
        TokenBatch probeBatch = TokenBatch.Pad(probe, bundle.Encoder.PaddingTokenId);
        using (var runOptions = new RunOptions())
        using (OrtValue mask = OrtValue.CreateTensorValueFromMemory(probeBatch.AttentionMask, probeBatch.Shape))
        {
            int[] layers = [.. bundle.Tasks.SelectMany(t => t.TrunkLayers).Distinct().Order()];
            using TrunkOutputs hidden = bundle.Trunk.Run(probeBatch, mask, layers, runOptions);
            foreach (int layer in layers)
            {
                using OrtMemoryInfo memory = hidden[layer].GetTensorMemoryInfo();
                Say($"- layer {layer}: hidden states in {memory.Name} memory (device {memory.Id}, {memory.GetMemoryType()})");
                if (cuda && memory.Name != Encoding.UTF8.GetString(OrtMemoryInfo.allocatorCUDA).TrimEnd('\0'))
                {
                    failures.Add($"layer {layer} hidden states in {memory.Name} memory, not CUDA");
                }
            }

            foreach (TaskDefinition task in bundle.Tasks)
            {
                bundle.Heads[task.Name].Run(hidden, mask, probe.Length, (int)probeBatch.Shape[1], maxRunMs: 0, CancellationToken.None).Dispose();
            }

            Say($"- every head ran on those values ({bundle.Tasks.Count} heads; each head's logits alone come back to the host)");
        }

        // (3) Parity of logits with the CPU.
        Say("");
        Say("## 3. Logits vs the CPU on parity.json's texts (each text alone)");
        Say("");
        ParityCheck(bundle, cpuEngine.Current!, hasFloat16 ? cpuFloat16Engine.Current : null, Path.Combine(bundleDir, "parity.json"), cuda, Say, failures);

        // (4) Throughput.
        Say("");
        Say("## 4. In-process utterances/s (one batch in flight, all tasks of each utterance's kind)");
        Say("");
        List<ClassifyInput> pool = Utterances.Load(data, bundle.Tasks, 64);
        var baselines = new List<(TaskDefinition Task, InferenceSession Session)>();
        if (baselinesDir.Length > 0)
        {
            JsonNode index = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(baselinesDir, "baselines.json")))!;
            foreach (TaskDefinition task in bundle.Tasks)
            {
                baselines.Add((task, sessions.CreateSession(Path.Combine(baselinesDir, index["tasks"]![task.Name]!["file"]!.GetValue<string>()))));
            }
        }

        Say("| batch | bundle | one model per task | trunk alone | bundle / trunk time | one model per task / bundle time |");
        Say("| ---: | ---: | ---: | ---: | ---: | ---: |");
        TaskDefinition[] tasks = [.. bundle.Tasks];
        foreach (int size in sizes)
        {
            int cursor = 0;
            ClassifyInput[] Next()
            {
                ClassifyInput[] batch = [.. Enumerable.Range(0, size).Select(i => pool[(cursor + i) % pool.Count])];
                cursor += size;
                return batch;
            }

            double a = await MeanMs(seconds, async () => await engine.ClassifyAsync(Next(), null));
            double c = await MeanMs(seconds, () =>
            {
                Passes.RunTrunk(bundle, Next(), tasks);
                return Task.CompletedTask;
            });
            double b = baselines.Count == 0 ? double.NaN : await MeanMs(seconds, () =>
            {
                ClassifyInput[] batch = Next();
                foreach ((TaskDefinition task, InferenceSession session) in baselines)
                {
                    ClassifyInput[] mine = [.. batch.Where(i => i.IsPair == (task.Input == TaskInputKind.Pair))];
                    if (mine.Length > 0)
                    {
                        Passes.RunBaseline(session, bundle, mine, task.Input);
                    }
                }

                return Task.CompletedTask;
            });
            Say($"| {size} | {size * 1000 / a:0} | {(double.IsNaN(b) ? "not run" : (size * 1000 / b).ToString("0", CultureInfo.InvariantCulture))} | {size * 1000 / c:0} | {a / c:0.00}× | {(double.IsNaN(b) ? "" : $"{b / a:0.00}×")} |");
            if (cuda && size >= 8 && a / c > 1.5)
            {
                failures.Add($"target: bundle within 1.5× of the trunk at batch {size}, measured {a / c:0.00}×");
            }

            if (cuda && size == 64 && size * 1000 / a < 10_000)
            {
                failures.Add($"target: >= 10,000 utterances/s at batch 64, measured {size * 1000 / a:0}");
            }
        }

        foreach ((_, InferenceSession session) in baselines)
        {
            session.Dispose();
        }

        Say("");
        Say(failures.Count == 0 ? (cuda ? "All in-process checks passed." : "Ran on the CPU: the CUDA checks were not run.") : "FAILED: " + string.Join("; ", failures));
        if (map.TryGetValue("out", out string? outFile))
        {
            await File.WriteAllTextAsync(outFile, report.ToString());
        }

        return failures.Count == 0 ? 0 : 1;
    }

    private static void ParityCheck(BundleSnapshot device, BundleSnapshot cpu, BundleSnapshot? cpuFloat16, string parityPath, bool cuda, Action<string> say, List<string> failures)
    {
        if (!File.Exists(parityPath))
        {
            say("(no parity.json in the bundle: not checked)");
            return;
        }

        JsonNode parity = JsonNode.Parse(File.ReadAllText(parityPath))!;
        double recorded = device.Bundle.Manifest.Trunk.Float16 is null ? 0
            : ReadRecordedDifference(Path.Combine(device.Bundle.Directory, BundleLoader.ManifestFileName));
        // Float16 graphs against the default (int8) ones: the toolkit's emulation measured `recorded`; allow twice that, at least 0.05.
        double acrossGraphs = Math.Max(0.05, 2 * recorded);
        double largestDefault = 0, largestSame = 0;
        int cases = 0;
        foreach (JsonNode? item in parity["cases"]!.AsArray())
        {
            int[] ids = [.. item!["inputIds"]!.AsArray().Select(v => v!.GetValue<int>())];
            int[] types = [.. item["tokenTypeIds"]!.AsArray().Select(v => v!.GetValue<int>())];
            foreach ((string task, _) in item["outputs"]!.AsObject())
            {
                float[] onDevice = Logits(device, task, ids, types);
                largestDefault = Math.Max(largestDefault, MaxDifference(onDevice, Logits(cpu, task, ids, types)));
                if (cpuFloat16 is not null)
                {
                    largestSame = Math.Max(largestSame, MaxDifference(onDevice, Logits(cpuFloat16, task, ids, types)));
                }

                cases++;
            }
        }

        say($"- {cases} (text, task) logit vectors");
        say($"- {device.TrunkFile} on {(cuda ? "CUDA" : "CPU")} vs {cpu.TrunkFile} on CPU: largest difference {largestDefault:0.0000} (tolerance {acrossGraphs:0.0000}: twice the toolkit's recorded {recorded:0.0000}, at least 0.05)");
        if (cpuFloat16 is not null)
        {
            say($"- vs the same graphs ({cpuFloat16.TrunkFile}) on CPU: largest difference {largestSame:0.0000} (tolerance {SameGraphsTolerance})");
            if (largestSame > SameGraphsTolerance)
            {
                failures.Add($"parity: same graphs differ by {largestSame:0.0000} > {SameGraphsTolerance}");
            }
        }

        if (largestDefault > acrossGraphs)
        {
            failures.Add($"parity: {largestDefault:0.0000} from the CPU's default graphs > {acrossGraphs:0.0000}");
        }
    }

    private static double ReadRecordedDifference(string manifestPath) =>
        JsonNode.Parse(File.ReadAllText(manifestPath))!["trunk"]?["float16"]?["maxParityLogitDifference"]?.GetValue<double>() ?? 0;

    private static float[] Logits(BundleSnapshot bundle, string task, int[] ids, int[] types)
    {
        TokenBatch batch = TokenBatch.Pad([new EncodedInput(ids, types, [])], bundle.Encoder.PaddingTokenId);
        using var runOptions = new RunOptions();
        using OrtValue mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
        TaskDefinition definition = bundle.Tasks.First(t => t.Name == task);
        using TrunkOutputs hidden = bundle.Trunk.Run(batch, mask, [.. definition.TrunkLayers.Order()], runOptions);
        using HeadOutput output = bundle.Heads[task].Run(hidden, mask, 1, (int)batch.Shape[1], maxRunMs: 0, CancellationToken.None);
        return output.Row(0).ToArray();
    }

    private static double MaxDifference(float[] a, float[] b) => a.Zip(b, (x, y) => Math.Abs((double)x - y)).DefaultIfEmpty(0).Max();

    private static async Task<double> MeanMs(double seconds, Func<Task> run)
    {
        for (int i = 0; i < 3; i++)
        {
            await run(); // warm-up: arenas, cuDNN/cuBLAS algorithm choice, JIT
        }

        var total = Stopwatch.StartNew();
        int count = 0;
        while (count < 10 || total.Elapsed.TotalSeconds < seconds)
        {
            await run();
            count++;
        }

        return total.Elapsed.TotalMilliseconds / count;
    }
}
