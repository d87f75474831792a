using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Configuration section <c>HeadGuards</c>: how the service protects the other tasks from a head
/// that misbehaves when it runs (docs/reliability.md#one-bad-head).
/// </summary>
public sealed class HeadGuardOptions
{
    public const string SectionName = "HeadGuards";

    /// <summary>
    /// Consecutive failed runs (an output that is not finite or not of the promised shape, an ONNX
    /// Runtime error, a run past <see cref="MaxRunMs"/>) after which a head is quarantined: it no
    /// longer runs and its task answers an error until an admin replaces or removes it.
    /// </summary>
    [Range(1, 1_000_000)]
    public int QuarantineAfter { get; set; } = 3;

    /// <summary>
    /// The time one head run may take. At admission the head runs once at the largest shapes the
    /// limits allow (<c>Limits:MaxBatchInputs</c> rows of the tokenizer's longest sequence) and is
    /// refused (422) when that run takes longer; at run time a longer run is terminated and the
    /// task answers an error for the batch. 0 turns both off.
    /// </summary>
    [Range(0, 3_600_000)]
    public int MaxRunMs { get; set; } = 5_000;
}
