using Microsoft.ML.OnnxRuntime;

namespace MultiTaskBert.Core.Inference;

/// <summary>How the engine schedules the ONNX Runtime runs of one batch.</summary>
/// <param name="ParallelHeads">Whether the heads run concurrently rather than one after another.</param>
/// <param name="BucketOverheadTokens">Padded tokens one more trunk pass is worth (length buckets).</param>
/// <param name="ShrinkCpuArena">Whether every run returns the CPU arena's free regions (<c>Inference:CpuArena=Shrink</c>).</param>
/// <param name="MaxPassTokens">Padded tokens of one trunk pass at most (a single longer row still runs).</param>
/// <param name="QuarantineAfter"><c>HeadGuards:QuarantineAfter</c>: consecutive failed runs that quarantine a head.</param>
/// <param name="MaxHeadRunMs"><c>HeadGuards:MaxRunMs</c>: the time one head run may take (0: no limit).</param>
/// <param name="MaxBatchRows"><c>Batching:MaxBatchSize</c>: the most rows one batch holds.</param>
/// <param name="MaxHeadRunMemoryMiB"><c>HeadGuards:MaxRunMemoryMiB</c>: each head's CPU arena cap (0: relative to the trunk, -1: none).</param>
internal sealed record RunSettings(
    bool ParallelHeads,
    int BucketOverheadTokens,
    bool ShrinkCpuArena = false,
    int MaxPassTokens = RunSettings.CpuMaxPassTokens,
    int QuarantineAfter = 3,
    int MaxHeadRunMs = 5_000,
    int MaxBatchRows = 32,
    int MaxHeadRunMemoryMiB = 0)
{
    /// <summary>The smallest budget <c>HeadGuards:MaxRunMemoryMiB=0</c> gives a head, whatever the trunk's size.</summary>
    public const long MinAutoHeadMemoryBytes = 64L << 20;

    /// <summary>
    /// The bytes each head's CPU arena may hold next to a trunk graph of <paramref name="trunkFileBytes"/>,
    /// or null for no cap (<c>-1</c>, or CUDA, where head tensors live in device memory).
    /// </summary>
    public long? HeadMemoryBudgetBytes(long trunkFileBytes, ExecutionTarget target) => MaxHeadRunMemoryMiB switch
    {
        _ when target == ExecutionTarget.Cuda => null,
        < 0 => null,
        0 => Math.Clamp(4 * trunkFileBytes, MinAutoHeadMemoryBytes, (long)BudgetedCpuArena.MaxBudgetMiB << 20),
        _ => (long)MaxHeadRunMemoryMiB << 20,
    };

    /// <summary>The default of <c>Batching:BucketOverheadTokens</c>.</summary>
    public const int DefaultBucketOverheadTokens = 64;

    /// <summary>
    /// <c>Batching:MaxPassTokens=0</c> (the default) on a CPU: measured on default@2.0.0 to keep resident
    /// memory within 1.5× its resting size under the largest batches, at no measurable throughput cost.
    /// </summary>
    public const int CpuMaxPassTokens = 512;

    /// <summary>
    /// The largest head input a batch can make at <paramref name="maxSequence"/> tokens: as many rows
    /// of that length as one trunk pass holds (at least one, at most a batch).
    /// </summary>
    public int LargestHeadRows(int maxSequence) => Math.Clamp(MaxPassTokens / Math.Max(1, maxSequence), 1, MaxBatchRows);

    /// <summary>Run options for one ONNX Runtime run with the settings' arena behaviour.</summary>
    public RunOptions NewRunOptions()
    {
        var runOptions = new RunOptions();
        if (ShrinkCpuArena)
        {
            // Give the arena's free regions back after the run: otherwise RSS keeps the high-water mark of the largest batch.
            runOptions.AddRunConfigEntry("memory.enable_memory_arena_shrinkage", "cpu:0");
        }

        return runOptions;
    }

    /// <summary>The pass limit in effect for <c>Batching:MaxPassTokens</c> on <paramref name="target"/> (0: the device's default).</summary>
    /// <remarks>On CUDA the default stays uncapped, as before the limit existed: not measured on a GPU yet.</remarks>
    public static int PassLimit(int configured, ExecutionTarget target) =>
        configured > 0 ? configured : target == ExecutionTarget.Cuda ? int.MaxValue : CpuMaxPassTokens;
}
