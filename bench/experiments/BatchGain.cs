// How much cheaper per utterance batching makes the served engine, and the trunk alone, in one
// thread, on the single-sentence dev utterances of the bundle's tasks (an experiment, see README.md).
// Under load at 64 connections both of the load test's modes keep both cores busy: batching off
// makes one engine call per request (batch 1), batching on makes one per batch. Per core, on can
// therefore serve at most 1 / (its cost per utterance) and off at least 1 / (the batch-1 cost), minus
// the same HTTP work per request in both; and no batch costs less per utterance than the trunk alone.
// So on / off <= (engine cost at batch 1) / (trunk cost per utterance at the best batch size), the
// bound printed at the end, unless off loses more than that to its many concurrent calls.
//   dotnet run -c Release bench/experiments/BatchGain.cs -- models/default ../shared/data
#:project ../../src/MultiTaskBert.Core/MultiTaskBert.Core.csproj
#:property ManagePackageVersionsCentrally=true
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Core.Tokenization;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
string bundlePath = args[0], dataDirectory = args[1];
double secondsPerSize = args.Length > 2 ? double.Parse(args[2], CultureInfo.InvariantCulture) : 6;

using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
using var serving = new ServingParts(sessions);
await serving.Registry.LoadAsync(bundlePath);
MultiTaskEngine engine = serving.Engine;
ModelBundle bundle = engine.Current!.Bundle;
var encoder = BertInputEncoder.Create(bundle.VocabPath, bundle.Manifest.Tokenizer);
TrunkInputNames inputNames = bundle.Manifest.Trunk.Inputs;
string[] hiddenNames = [.. bundle.Tasks.Where(t => t.Input == TaskInputKind.Single).Select(t => bundle.TrunkOutputsByLayer[t.BranchLayer]).Distinct()];
using InferenceSession trunk = sessions.CreateSession(bundle.TrunkPath);

// Every distinct dev sentence of the single-sentence tasks, sorted by token count, so a batch of
// neighbours pads (almost) nothing: the fairest case for batching and for the trunk alone.
ClassifyInput[] pool = [.. bundle.Tasks.Where(t => t.Input == TaskInputKind.Single)
    .Select(t => Path.Combine(dataDirectory, t.Name, "dev.jsonl")).Where(File.Exists)
    .SelectMany(File.ReadLines).Where(l => l.Length > 0)
    .Select(l => JsonDocument.Parse(l).RootElement).Where(e => e.TryGetProperty("text", out _))
    .Select(e => e.GetProperty("text").GetString()!).Distinct(StringComparer.Ordinal)
    .Select(text => new ClassifyInput(text))
    .OrderBy(i => encoder.Encode(i.Text).InputIds.Count)];
int[] sizes = [1, 8, 16, 32, 64];
var engineSeconds = sizes.ToDictionary(s => s, _ => 0.0);
var trunkSeconds = sizes.ToDictionary(s => s, _ => 0.0);
var utterances = sizes.ToDictionary(s => s, _ => 0);
using var runOptions = new RunOptions();
var random = new Random(0);

// Every round takes a random window of 64 neighbours in the sorted pool and runs it at every size
// (64 / n batches of n), engine then trunk: every size sees the same utterances, and a slow spell of
// the machine hits them alike.
var clock = Stopwatch.StartNew();
for (int round = 0; clock.Elapsed.TotalSeconds < secondsPerSize * sizes.Length; round++)
{
    int start = random.Next(pool.Length - sizes[^1] + 1);
    ClassifyInput[] window = pool[start..(start + sizes[^1])];
    foreach (int size in sizes)
    {
        foreach (ClassifyInput[] batch in window.Chunk(size))
        {
            long engineStart = Stopwatch.GetTimestamp();
            await engine.ClassifyAsync(batch, null);
            double engineElapsed = Stopwatch.GetElapsedTime(engineStart).TotalSeconds;

            long trunkStart = Stopwatch.GetTimestamp();
            TokenBatch tokens = TokenBatch.Pad([.. batch.Select(i => encoder.Encode(i.Text))], encoder.PaddingTokenId);
            using (OrtValue ids = OrtValue.CreateTensorValueFromMemory(tokens.InputIds, tokens.Shape))
            using (OrtValue mask = OrtValue.CreateTensorValueFromMemory(tokens.AttentionMask, tokens.Shape))
            using (OrtValue types = OrtValue.CreateTensorValueFromMemory(tokens.TokenTypeIds, tokens.Shape))
            using (trunk.Run(runOptions, [inputNames.InputIds, inputNames.AttentionMask, inputNames.TokenTypeIds], [ids, mask, types], hiddenNames))
            {
            }

            double trunkElapsed = Stopwatch.GetElapsedTime(trunkStart).TotalSeconds;
            if (round >= 1)
            {
                engineSeconds[size] += engineElapsed;
                trunkSeconds[size] += trunkElapsed;
                utterances[size] += size;
            }
        }
    }
}

double Ms(Dictionary<int, double> seconds, int size) => 1000 * seconds[size] / utterances[size];
Console.WriteLine($"{bundle.ModelId}: every single-sentence task, {pool.Length} dev sentences, batches of neighbours in token count, one thread, at least {utterances.Values.Min()} utterances per size");
Console.WriteLine();
Console.WriteLine("| batch | engine ms per utterance | engine gain over batch 1 | trunk alone ms per utterance | trunk gain over batch 1 |");
Console.WriteLine("| ---: | ---: | ---: | ---: | ---: |");
foreach (int size in sizes)
{
    Console.WriteLine($"| {size} | {Ms(engineSeconds, size):F2} | {Ms(engineSeconds, 1) / Ms(engineSeconds, size):F2}x | {Ms(trunkSeconds, size):F2} | {Ms(trunkSeconds, 1) / Ms(trunkSeconds, size):F2}x |");
}

double floor = sizes.Min(s => Ms(trunkSeconds, s));
Console.WriteLine();
Console.WriteLine($"Bound on batching on / off: engine at batch 1 / trunk alone at its cheapest = {Ms(engineSeconds, 1):F2} / {floor:F2} = {Ms(engineSeconds, 1) / floor:F2}x");
Console.WriteLine($"The same bound if the engine at batch 1 cost 1.5x the trunk (the issue's floor target): {1.5 * Ms(trunkSeconds, 1) / floor:F2}x");
