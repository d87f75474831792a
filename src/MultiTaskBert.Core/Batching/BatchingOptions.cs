using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Core.Batching;

/// <summary>Configuration section <c>Batching</c>: dynamic micro-batching across concurrent requests.</summary>
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

    public bool Enabled => MaxWaitMs > 0;
}
