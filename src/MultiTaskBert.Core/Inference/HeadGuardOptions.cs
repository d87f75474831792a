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

    /// <summary>
    /// The memory one head's runs may hold, in MiB: each head's session allocates from its own CPU
    /// arena capped at this size, so a head is refused (422) when its warm-up at the largest head
    /// input asks for more, and a later run that asks for more fails for its task only. 0 (the
    /// default): four times the trunk graph's file size, at least 64 MiB (a head branches from the
    /// trunk; one run needing more than four trunks is not a head). -1 turns the cap off. On CUDA
    /// the cap does not apply (the heads' tensors live in device memory).
    /// </summary>
    [Range(-1, BudgetedCpuArena.MaxBudgetMiB)]
    public int MaxRunMemoryMiB { get; set; }
}
