using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>Configuration section <c>Limits</c>: what one request may ask for.</summary>
public sealed class LimitsOptions
{
    public const string SectionName = "Limits";

    /// <summary>Characters per <c>text</c> / <c>textPair</c>.</summary>
    [Range(1, 1_000_000)]
    public int MaxTextChars { get; set; } = 2000;

    /// <summary>Inputs per <c>POST /classify/batch</c>.</summary>
    [Range(1, 10_000)]
    public int MaxBatchInputs { get; set; } = 64;

    /// <summary>Entries in <c>tasks</c>.</summary>
    [Range(1, 10_000)]
    public int MaxTasksPerRequest { get; set; } = 32;

    /// <summary>Request body size; larger bodies get 413.</summary>
    [Range(1, long.MaxValue)]
    public long MaxRequestBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// End-to-end time a classify request may take (queueing and inference); past it the
    /// request is cancelled (ONNX Runtime stops between kernels) and answered 504.
    /// </summary>
    [Range(1, 3_600_000)]
    public int RequestTimeoutMs { get; set; } = 30_000;
}
