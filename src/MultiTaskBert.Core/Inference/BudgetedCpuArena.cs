using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.OnnxRuntime;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Creates a session whose CPU allocations come from an arena of its own, capped at a budget:
/// ONNX Runtime refuses an allocation past the cap (the run fails) instead of letting one head take
/// the machine's memory. ONNX Runtime has no per-session arena limit in its C# API, so the arena is
/// registered on the process-wide environment (<c>OrtEnv.CreateAndRegisterAllocator</c> with an
/// <c>OrtArenaCfg</c> max memory), taken by the new session (<c>session.use_env_allocators</c>)
/// and unregistered again: the session keeps its own reference, so every budgeted session has an
/// arena of its own.
/// </summary>
internal static partial class BudgetedCpuArena
{
    /// <summary>The largest budget: <c>OrtArenaCfg</c> takes the cap as a 32-bit byte count.</summary>
    public const int MaxBudgetMiB = 4095;

    // The environment is one per process and holds one CPU allocator at a time: registration, session
    // creation and unregistration must not interleave between two loads (two hosts in one test process).
    private static readonly Lock Registration = new();

    /// <summary>A session over <paramref name="modelPath"/> whose CPU arena holds at most <paramref name="budgetBytes"/>.</summary>
    public static InferenceSession CreateSession(string modelPath, SessionOptions options, long budgetBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(budgetBytes);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(budgetBytes, (long)MaxBudgetMiB << 20);
        options.AddSessionConfigEntry("session.use_env_allocators", "1");
        using var memory = new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
        // -1: ONNX Runtime's defaults for the extend strategy, the first chunk and the dead bytes per chunk.
        using var arena = new OrtArenaCfg((uint)budgetBytes, -1, -1, -1);
        lock (Registration)
        {
            OrtEnv.Instance().CreateAndRegisterAllocator(memory, arena);
            try
            {
                return new InferenceSession(modelPath, options);
            }
            finally
            {
                OrtEnv.Instance().UnregisterAllocator(memory);
            }
        }
    }

    /// <summary>
    /// What a run refused by its arena asked for, from ONNX Runtime's message ("Available memory of
    /// A is smaller than requested bytes of R"), or null when the failure was something else.
    /// </summary>
    public static (long Requested, long Available)? Refusal(string onnxRuntimeMessage)
    {
        Match match = ArenaRefusal().Match(onnxRuntimeMessage);
        return match.Success
            ? (long.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture))
            : null;
    }

    [GeneratedRegex(@"Available memory of (\d+) is smaller than requested bytes of (\d+)")]
    private static partial Regex ArenaRefusal();
}
