using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Tokenization;

/// <summary>The passes both benchmarks time: one model per task, and the trunk alone, as the engine batches them.</summary>
internal static class Passes
{
    // The served baselines and trunk split their rows into the same length buckets as the engine
    // (Batching:BucketOverheadTokens), so padding favours neither side.
    public static IEnumerable<TokenBatch> PaddedBuckets(BundleSnapshot bundle, EncodedInput[] encoded) =>
        LengthBuckets.Split([.. encoded.Select(e => e.Length)], BatchingOptions.DefaultBucketOverheadTokens)
            .Select(rows => TokenBatch.Pad([.. rows.Select(r => encoded[r])], bundle.Encoder.PaddingTokenId));

    public static void RunBaseline(InferenceSession session, BundleSnapshot bundle, ClassifyInput[] inputs, TaskInputKind kind)
    {
        EncodedInput[] encoded = [.. inputs.Select(i => bundle.Encoder.Encode(i.Text, kind == TaskInputKind.Pair ? i.TextPair : null))];
        foreach (TokenBatch batch in PaddedBuckets(bundle, encoded))
        {
            RunModel(session, batch);
        }
    }

    public static void RunModel(InferenceSession session, TokenBatch batch)
    {
        using OrtValue ids = OrtValue.CreateTensorValueFromMemory(batch.InputIds, batch.Shape);
        using OrtValue mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
        using OrtValue types = OrtValue.CreateTensorValueFromMemory(batch.TokenTypeIds, batch.Shape);
        using var runOptions = new RunOptions();
        using IDisposableReadOnlyCollection<OrtValue> outputs = session.Run(runOptions,
            ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], ["logits"]);
        _ = outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public static void RunTrunk(BundleSnapshot bundle, ClassifyInput[] inputs, TaskDefinition[] tasks)
    {
        using var runOptions = new RunOptions();
        foreach (TaskInputKind kind in new[] { TaskInputKind.Single, TaskInputKind.Pair })
        {
            ClassifyInput[] mine = [.. inputs.Where(i => i.IsPair == (kind == TaskInputKind.Pair))];
            int[] layers = [.. tasks.Where(t => t.Input == kind).Select(t => t.BranchLayer).Distinct().Order()];
            if (mine.Length == 0 || layers.Length == 0)
            {
                continue;
            }

            EncodedInput[] encoded = [.. mine.Select(i => bundle.Encoder.Encode(i.Text, i.TextPair))];
            foreach (TokenBatch batch in PaddedBuckets(bundle, encoded))
            {
                using OrtValue mask = OrtValue.CreateTensorValueFromMemory(batch.AttentionMask, batch.Shape);
                using TrunkOutputs hidden = bundle.Trunk.Run(batch, mask, layers, runOptions);
            }
        }
    }
}
