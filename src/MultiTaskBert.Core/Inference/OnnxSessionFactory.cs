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
    private readonly HeadGuardOptions _guards;

    /// <param name="options">The <c>Inference</c> section.</param>
    /// <param name="logger">Logs the device chosen.</param>
    /// <param name="guards">The <c>HeadGuards</c> section, for each head session's memory budget (null: its defaults).</param>
    public OnnxSessionFactory(InferenceOptions options, ILogger<OnnxSessionFactory> logger, HeadGuardOptions? guards = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        _guards = guards ?? new HeadGuardOptions();
        Target = ResolveTarget(options, logger);
        HiddenStateMemory = Target == ExecutionTarget.Cuda
            ? new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, options.CudaDeviceId, OrtMemType.Default)
            : new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
    }

    public ExecutionTarget Target { get; }

    /// <summary>Run options for one ONNX Runtime run with the configured arena behaviour (<c>Inference:CpuArena</c>).</summary>
    public RunOptions NewRunOptions()
    {
        var runOptions = new RunOptions();
        if (_options.CpuArena == CpuArena.Shrink)
        {
            // Give the arena's free regions back after the run: otherwise RSS keeps the high-water mark of the largest batch.
            runOptions.AddRunConfigEntry("memory.enable_memory_arena_shrinkage", "cpu:0");
        }

        return runOptions;
    }

    /// <summary>Memory the trunk writes its hidden states to: device memory on CUDA, so heads read them without a host round-trip.</summary>
    public OrtMemoryInfo HiddenStateMemory { get; }

    public InferenceSession CreateSession(string modelPath) => CreateSession(modelPath, profilePrefix: null);

    /// <summary>
    /// A session with the shared settings; with <paramref name="profilePrefix"/>, ONNX Runtime's
    /// profiler records each node run and the provider it ran on (<see cref="NodePlacement"/>).
    /// </summary>
    public InferenceSession CreateSession(string modelPath, string? profilePrefix)
    {
        using SessionOptions sessionOptions = CreateSessionOptions();
        if (profilePrefix is not null)
        {
            // The prefix first: enabling profiling hands ONNX Runtime the prefix set at that moment.
            sessionOptions.ProfileOutputPathPrefix = profilePrefix;
            sessionOptions.EnableProfiling = true;
        }

        return new InferenceSession(modelPath, sessionOptions);
    }

    /// <summary><c>Inference:Precision</c>: which graphs serve (<see cref="GraphSelection.ServesFloat16"/>).</summary>
    public GraphPrecision Precision => _options.Precision;
    /// <summary>
    /// A head's session: with <paramref name="memoryBudgetBytes"/>, its CPU allocations come from an
    /// arena of its own capped at that size (<see cref="BudgetedCpuArena"/>).
    /// </summary>
    public InferenceSession CreateHeadSession(string modelPath, long? memoryBudgetBytes)
    {
        if (memoryBudgetBytes is not { } budget)
        {
            return CreateSession(modelPath);
        }

        using SessionOptions sessionOptions = CreateSessionOptions();
        return BudgetedCpuArena.CreateSession(modelPath, sessionOptions, budget);
    }

    /// <summary>The smallest budget <c>HeadGuards:MaxRunMemoryMiB=0</c> gives a head, whatever the trunk's size.</summary>
    public const long MinAutoHeadMemoryBytes = 64L << 20;

    /// <summary>
    /// The bytes each head's CPU arena may hold next to a trunk graph of <paramref name="trunkFileBytes"/>
    /// (<c>HeadGuards:MaxRunMemoryMiB</c>), or null for no cap (<c>-1</c>, or CUDA, where head tensors live in device memory).
    /// </summary>
    public long? HeadMemoryBudgetBytes(long trunkFileBytes) => _guards.MaxRunMemoryMiB switch
    {
        _ when Target == ExecutionTarget.Cuda => null,
        < 0 => null,
        0 => Math.Clamp(4 * trunkFileBytes, MinAutoHeadMemoryBytes, (long)BudgetedCpuArena.MaxBudgetMiB << 20),
        _ => (long)_guards.MaxRunMemoryMiB << 20,
    };

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

        LogCudaUnavailable(logger, unavailable);
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

    // Information, not a warning: on a machine without a GPU, auto running on the CPU is the expected outcome.
    [LoggerMessage(Level = LogLevel.Information, Message = "CUDA not available ({Reason}); running on CPU (Inference:Device is auto; set it to cpu to skip the probe, or cuda to refuse to start without CUDA)")]
    private static partial void LogCudaUnavailable(ILogger logger, string reason);
}
