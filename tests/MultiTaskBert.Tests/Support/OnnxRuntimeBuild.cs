using System.Reflection;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Tests.Support;

/// <summary>The ONNX Runtime this test build runs on: the package flavour it references and the native library loaded.</summary>
public static class OnnxRuntimeBuild
{
    /// <summary>"Cpu" or "Gpu": the <c>OnnxRuntimeFlavor</c> this assembly was built with.</summary>
    public static string Flavor { get; } = typeof(OnnxRuntimeBuild).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "OnnxRuntimeFlavor").Value!;

    public static bool IsGpuFlavor => Flavor == "Gpu";

    /// <summary>Why CUDA cannot be used here, or null when it can (the probe the service runs at start-up).</summary>
    public static string? CudaUnavailableReason { get; } = OnnxSessionFactory.ProbeCuda(0);

    /// <summary>The path of the libonnxruntime.so mapped into this process (Linux), or null.</summary>
    public static string? LoadedNativeLibrary()
    {
        _ = OrtEnv.Instance(); // loads the native library
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps))
        {
            return null;
        }

        return File.ReadLines(maps)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(parts => parts.Length >= 6 && Path.GetFileName(parts[5]) == "libonnxruntime.so")
            .Select(parts => parts[5])
            .FirstOrDefault();
    }
}

/// <summary>A fact that needs a usable CUDA device; skipped, with the reason the probe gave, elsewhere.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute()
    {
        if (OnnxRuntimeBuild.CudaUnavailableReason is { } reason)
        {
            Skip = $"needs CUDA (run the GPU flavour on a GPU machine: bench/gpu/run.sh): {reason}";
        }
    }
}
