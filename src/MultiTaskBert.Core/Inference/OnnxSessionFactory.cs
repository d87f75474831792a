using Microsoft.Extensions.Logging;
using Microsoft.ML.OnnxRuntime;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Resolves the execution device once and creates every ONNX Runtime session with the same
/// settings: the configured graph optimisation level and intra-op threads, CUDA provider when selected.
/// </summary>
public sealed partial class OnnxSessionFactory : IDisposable
{
    public const string CudaProviderName = "CUDAExecutionProvider";

    private readonly InferenceOptions _options;

    /// <summary>How the engine schedules the runs of a batch (<c>Inference:ParallelHeads</c>, <c>Inference:BucketOverheadTokens</c>).</summary>
    internal RunSettings RunSettings => new(_options.ParallelHeads, _options.BucketOverheadTokens, _options.CpuArena == CpuArena.Shrink);

    public OnnxSessionFactory(InferenceOptions options, ILogger<OnnxSessionFactory> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        Target = ResolveTarget(options, logger);
        HiddenStateMemory = Target == ExecutionTarget.Cuda
            ? new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, options.CudaDeviceId, OrtMemType.Default)
            : new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
    }

    public ExecutionTarget Target { get; }

    /// <summary>Memory the trunk writes its hidden states to: device memory on CUDA, so heads read them without a host round-trip.</summary>
    public OrtMemoryInfo HiddenStateMemory { get; }

    public InferenceSession CreateSession(string modelPath)
    {
        using SessionOptions sessionOptions = CreateSessionOptions();
        return new InferenceSession(modelPath, sessionOptions);
    }

    private SessionOptions CreateSessionOptions()
    {
        var sessionOptions = new SessionOptions
        {
            GraphOptimizationLevel = _options.GraphOptimization switch
            {
                GraphOptimization.None => GraphOptimizationLevel.ORT_DISABLE_ALL,
                GraphOptimization.Basic => GraphOptimizationLevel.ORT_ENABLE_BASIC,
                GraphOptimization.Extended => GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
                _ => GraphOptimizationLevel.ORT_ENABLE_ALL,
            },
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_WARNING,
        };
        if (_options.IntraOpThreads > 0)
        {
            sessionOptions.IntraOpNumThreads = _options.IntraOpThreads;
        }

        if (!_options.AllowSpinning)
        {
            sessionOptions.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        }

        if (Target == ExecutionTarget.Cuda)
        {
            using OrtCUDAProviderOptions cudaOptions = CreateCudaProviderOptions(_options.CudaDeviceId);
            sessionOptions.AppendExecutionProvider_CUDA(cudaOptions);
        }

        return sessionOptions;
    }

    private static ExecutionTarget ResolveTarget(InferenceOptions options, ILogger logger)
    {
        if (options.Device == InferenceDevice.Cpu)
        {
            LogDevice(logger, ExecutionTarget.Cpu, "Inference:Device is cpu");
            return ExecutionTarget.Cpu;
        }

        string? unavailable = ProbeCuda(options.CudaDeviceId);
        if (unavailable is null)
        {
            LogCudaSelected(logger, options.Device, options.CudaDeviceId);
            return ExecutionTarget.Cuda;
        }

        if (options.Device == InferenceDevice.Cuda)
        {
            throw new InferenceDeviceUnavailableException($"Inference:Device is cuda but CUDA cannot be used: {unavailable}");
        }

        LogCudaFallback(logger, unavailable);
        return ExecutionTarget.Cpu;
    }

    /// <summary>Returns why CUDA cannot be used, or null when the provider can be appended.</summary>
    internal static string? ProbeCuda(int deviceId)
    {
        try
        {
            if (!OrtEnv.Instance().GetAvailableProviders().Contains(CudaProviderName, StringComparer.Ordinal))
            {
                return $"this ONNX Runtime build has no {CudaProviderName} (CPU package; build with -p:OnnxRuntimeFlavor=Gpu)";
            }

            // Appending loads the provider library and its CUDA/cuDNN dependencies; a missing driver or device fails here.
            using var probe = new SessionOptions();
            using OrtCUDAProviderOptions cudaOptions = CreateCudaProviderOptions(deviceId);
            probe.AppendExecutionProvider_CUDA(cudaOptions);
            return null;
        }
        catch (Exception ex) when (ex is OnnxRuntimeException or DllNotFoundException or EntryPointNotFoundException)
        {
            return ex.Message;
        }
    }

    private static OrtCUDAProviderOptions CreateCudaProviderOptions(int deviceId)
    {
        var cudaOptions = new OrtCUDAProviderOptions();
        cudaOptions.UpdateOptions(new Dictionary<string, string>
        {
            ["device_id"] = deviceId.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        return cudaOptions;
    }

    public void Dispose() => HiddenStateMemory.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "ONNX Runtime sessions run on {Target} ({Reason})")]
    private static partial void LogDevice(ILogger logger, ExecutionTarget target, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "ONNX Runtime sessions run on Cuda (Inference:Device is {Device}, CUDA device {DeviceId})")]
    private static partial void LogCudaSelected(ILogger logger, InferenceDevice device, int deviceId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Inference:Device is auto and CUDA is unavailable, falling back to CPU: {Reason}")]
    private static partial void LogCudaFallback(ILogger logger, string reason);
}
