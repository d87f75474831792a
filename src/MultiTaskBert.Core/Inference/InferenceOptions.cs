using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Core.Inference;

public enum InferenceDevice
{
    /// <summary>CUDA when the execution provider and a device are available, else CPU (logged once).</summary>
    Auto,
    Cpu,

    /// <summary>CUDA or fail start-up.</summary>
    Cuda,
}

/// <summary>Which graphs of a bundle serve (<c>Inference:Precision</c>).</summary>
public enum GraphPrecision
{
    /// <summary>On CUDA the float16 graphs when the bundle has them (<c>trunk.float16</c>), else the default ones.</summary>
    Auto,

    /// <summary>The trunk and heads the manifest names first (int8 or float32), on any device.</summary>
    Default,

    /// <summary>The float16 trunk and the heads' float graphs, on any device (start-up fails when the bundle has none).</summary>
    Float16,
}

/// <summary>Configuration section <c>Inference</c>.</summary>
public sealed class InferenceOptions
{
    public const string SectionName = "Inference";

    public InferenceDevice Device { get; set; } = InferenceDevice.Auto;

    /// <summary>
    /// Which graphs serve: <c>Auto</c> picks by device (CUDA: the float16 trunk, whose matmuls CUDA
    /// runs, when the bundle has one; CPU: the default, usually int8, trunk). <c>Float16</c> on a CPU
    /// is for checking the float16 graphs, not for speed: ONNX Runtime's CPU provider computes most
    /// float16 nodes in float32 between casts.
    /// </summary>
    public GraphPrecision Precision { get; set; } = GraphPrecision.Auto;

    /// <summary>
    /// Threads ONNX Runtime uses inside one operator; 0 lets ONNX Runtime choose (on Linux half the
    /// logical processors: one on a 2-vCPU machine). Every session (trunk and each head) gets its
    /// own pool: on 2 cores, 2 threads per session made the bundle about 4× slower, because one
    /// session's workers still spin while the next session runs (docs/benchmarks.md).
    /// </summary>
    [Range(0, 1024)]
    public int IntraOpThreads { get; set; }

    /// <summary>
    /// Whether ONNX Runtime's intra-op threads spin while waiting for work (its default). Spinning
    /// lowers latency on an otherwise idle machine; turning it off leaves the cores to the HTTP
    /// server and tokenization when they share few cores.
    /// </summary>
    public bool AllowSpinning { get; set; } = true;

    /// <summary>
    /// ONNX Runtime graph optimisation level for every session. <c>All</c> (the default) adds the
    /// layout and fusion passes on top of <c>Extended</c>; docs/benchmarks.md measures the levels.
    /// </summary>
    public GraphOptimization GraphOptimization { get; set; } = GraphOptimization.All;

    /// <summary>
    /// ONNX Runtime's CPU memory arena. <c>On</c> (default): ONNX Runtime's default, the arena keeps
    /// its high-water mark; <c>Shrink</c>: the arena gives back its free regions after every run.
    /// Measured on the fixture bundle (docs/reliability.md): Shrink held more memory after a run of
    /// the largest batches (freed regions stay with the C allocator) and ran slower, so it is not the default.
    /// </summary>
    public CpuArena CpuArena { get; set; } = CpuArena.On;

    /// <summary>CUDA device ordinal used when running on CUDA.</summary>
    [Range(0, 64)]
    public int CudaDeviceId { get; set; }
}

/// <summary>ONNX Runtime graph optimisation levels (<c>GraphOptimizationLevel</c>), as configuration values.</summary>
public enum GraphOptimization
{
    /// <summary>No graph rewriting.</summary>
    None,

    /// <summary>Constant folding and redundant-node elimination.</summary>
    Basic,

    /// <summary>Plus operator fusions (attention, layer norm, GELU, matmul + add).</summary>
    Extended,

    /// <summary>Plus layout optimisations.</summary>
    All,
}

/// <summary>How ONNX Runtime's CPU memory arena is used (<c>Inference:CpuArena</c>).</summary>
public enum CpuArena
{
    /// <summary>Arena on, never shrinks (ONNX Runtime's default).</summary>
    On,

    /// <summary>Arena on; its free regions are returned after every run (<c>memory.enable_memory_arena_shrinkage</c>).</summary>
    Shrink,
}
