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

/// <summary>Configuration section <c>Inference</c>.</summary>
public sealed class InferenceOptions
{
    public const string SectionName = "Inference";

    public InferenceDevice Device { get; set; } = InferenceDevice.Auto;

    /// <summary>Threads ONNX Runtime uses inside one operator; 0 lets ONNX Runtime choose (one per physical core).</summary>
    [Range(0, 1024)]
    public int IntraOpThreads { get; set; }

    /// <summary>CUDA device ordinal used when running on CUDA.</summary>
    [Range(0, 64)]
    public int CudaDeviceId { get; set; }
}
