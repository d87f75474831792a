using System.ComponentModel.DataAnnotations;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Core.Batching;

/// <summary>
/// Configuration section <c>Batching</c>, every batching setting: how requests are merged into
/// batches (<see cref="BatchPolicy"/>, <see cref="MicroBatcher"/>) and how the engine runs one
/// batch (<see cref="BucketOverheadTokens"/>, <see cref="MaxPassTokens"/>, <see cref="ParallelHeads"/>).
/// </summary>
public sealed class BatchingOptions
{
    public const string SectionName = "Batching";

    /// <summary>A batch closes once it holds this many inputs (utterances). A single larger request still runs, alone.</summary>
    [Range(1, 4096)]
    public int MaxBatchSize { get; set; } = 32;

    /// <summary>A batch closes before its padded size (rows × longest row, in tokens) would exceed this. A single larger request still runs, alone.</summary>
    [Range(1, 1_048_576)]
    public int MaxBatchTokens { get; set; } = 8192;

    /// <summary>How long the oldest waiting request may wait for others to join its batch, in milliseconds. 0 disables batching: every request runs on its own, at once.</summary>
    [Range(0.0, 10_000.0)]
    public double MaxWaitMs { get; set; } = 2;

    /// <summary>Requests waiting for a batch at most; beyond that a request is refused (HTTP 503 with Retry-After).</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 1024;

    /// <summary>
    /// Batches that may run at the same time. Each run uses the intra-op threads of its sessions
    /// (one on a 2-core machine by ONNX Runtime's default), so more batches in flight let the
    /// other cores work while one batch runs; the next batch still forms only when a slot frees,
    /// so batches grow with the load. 1 runs one batch at a time.
    /// </summary>
    [Range(1, 64)]
    public int MaxConcurrentBatches { get; set; } = 2;

    /// <summary>
    /// What one more trunk pass (and run of every head) costs, in padded tokens. The rows of a
    /// batch are split into buckets of similar length wherever that saves more padding than this
    /// (see <c>LengthBuckets</c>); a large value (e.g. 1000000) pads every batch to its longest row.
    /// Formerly <c>Inference:BucketOverheadTokens</c>.
    /// </summary>
    [Range(0, 1_000_000)]
    public int BucketOverheadTokens { get; set; } = DefaultBucketOverheadTokens;

    /// <summary>
    /// Padded tokens (rows × longest row) of one trunk pass at most: a larger batch runs in several
    /// passes. The memory of a run grows with its padded size and ONNX Runtime's CPU arena keeps its
    /// high-water mark, so this bounds the service's resident memory (docs/reliability.md); on a CPU,
    /// past a few hundred tokens a larger pass is no faster. A single longer row still runs.
    /// 0 (default): the device's default, 512 on a CPU, uncapped on CUDA.
    /// </summary>
    [Range(0, 1_048_576)]
    public int MaxPassTokens { get; set; }

    /// <summary>
    /// Whether the heads of one batch run concurrently (thread-pool tasks) or one after another.
    /// Each head already uses the intra-op threads; with few cores, sequential heads avoid
    /// oversubscription (measured no slower on 2 cores, see docs/benchmarks.md).
    /// Formerly <c>Inference:ParallelHeads</c>.
    /// </summary>
    public bool ParallelHeads { get; set; }

    public bool Enabled => MaxWaitMs > 0;

    /// <summary>The default of <see cref="BucketOverheadTokens"/>.</summary>
    public const int DefaultBucketOverheadTokens = 64;

    /// <summary>
    /// <see cref="MaxPassTokens"/> = 0 (the default) on a CPU: measured on default@2.0.0 to keep resident
    /// memory within 1.5× its resting size under the largest batches, at no measurable throughput cost.
    /// </summary>
    public const int CpuMaxPassTokens = 512;

    /// <summary>The pass limit in effect for <paramref name="configured"/> on <paramref name="target"/> (0: the device's default).</summary>
    /// <remarks>On CUDA the default stays uncapped, as before the limit existed: not measured on a GPU yet.</remarks>
    public static int PassLimit(int configured, ExecutionTarget target) =>
        configured > 0 ? configured : target == ExecutionTarget.Cuda ? int.MaxValue : CpuMaxPassTokens;

    /// <summary>
    /// The largest head input a batch can make at <paramref name="maxSequence"/> tokens: as many rows
    /// of that length as one trunk pass holds (at least one, at most a batch).
    /// </summary>
    public int LargestHeadRows(int maxSequence, ExecutionTarget target) =>
        Math.Clamp(PassLimit(MaxPassTokens, target) / Math.Max(1, maxSequence), 1, MaxBatchSize);
}
