namespace MultiTaskBert.Core.Inference;

/// <summary>How the engine schedules the ONNX Runtime runs of one batch.</summary>
/// <param name="ParallelHeads">Whether the heads run concurrently rather than one after another.</param>
/// <param name="BucketOverheadTokens">Padded tokens one more trunk pass is worth (length buckets).</param>
/// <param name="ShrinkCpuArena">Whether every run returns the CPU arena's free regions (<c>Inference:CpuArena=Shrink</c>).</param>
/// <param name="MaxPassTokens">Padded tokens of one trunk pass at most (a single longer row still runs).</param>
internal sealed record RunSettings(bool ParallelHeads, int BucketOverheadTokens, bool ShrinkCpuArena = false, int MaxPassTokens = RunSettings.DefaultMaxPassTokens)
{
    /// <summary>The default of <c>Batching:BucketOverheadTokens</c>.</summary>
    public const int DefaultBucketOverheadTokens = 64;

    /// <summary>The default of <c>Batching:MaxPassTokens</c>.</summary>
    public const int DefaultMaxPassTokens = 1024;
}
