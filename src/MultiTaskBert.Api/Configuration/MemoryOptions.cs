using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>Configuration section <c>Memory</c>: giving memory back once the load stops (docs/reliability.md#hostile-input-and-memory).</summary>
public sealed class MemoryOptions
{
    public const string SectionName = "Memory";

    /// <summary>
    /// Seconds without a finished batch, after batches ran, before the service gives memory back:
    /// a full blocking garbage collection that compacts and decommits (<c>GCCollectionMode.Aggressive</c>)
    /// and, with <see cref="ReturnNativeMemory"/>, the C allocator's free pages. 0 turns it off.
    /// </summary>
    [Range(0, 3600)]
    public int IdleTrimSeconds { get; set; } = 5;

    /// <summary>Whether the idle trim also returns the C allocator's free pages (glibc <c>malloc_trim</c>; ONNX Runtime's freed buffers).</summary>
    public bool ReturnNativeMemory { get; set; } = true;
}
