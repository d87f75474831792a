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

    /// <param name="options">The <c>Inference</c> section.</param>
    /// <param name="logger">Logs the device chosen.</param>
    /// <param name="parallelHeads"><c>Batching:ParallelHeads</c>: whether the heads of a batch run concurrently.</param>
    /// <param name="bucketOverheadTokens"><c>Batching:BucketOverheadTokens</c>: padded tokens one more trunk pass is worth.</param>
    /// <param name="maxPassTokens"><c>Batching:MaxPassTokens</c>: padded tokens of one trunk pass at most; 0: the device's default.</param>
    /// <param name="guards">The <c>HeadGuards</c> section (null: its defaults).</param>
    /// <param name="maxBatchRows"><c>Batching:MaxBatchSize</c>: the most rows of one batch (the largest head input at admission).</param>
    public OnnxSessionFactory(InferenceOptions options, ILogger<OnnxSessionFactory> logger,
        bool parallelHeads = false, int bucketOverheadTokens = RunSettings.DefaultBucketOverheadTokens, int maxPassTokens = 0,
        HeadGuardOptions? guards = null, int maxBatchRows = 32)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfNegative(bucketOverheadTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(maxPassTokens);
        _options = options;
        Target = ResolveTarget(options, logger);
        guards ??= new HeadGuardOptions();
        RunSettings = new RunSettings(parallelHeads, bucketOverheadTokens, options.CpuArena == CpuArena.Shrink, RunSettings.PassLimit(maxPassTokens, Target),
            guards.QuarantineAfter, guards.MaxRunMs, maxBatchRows, guards.MaxRunMemoryMiB);
        HiddenStateMemory = Target == ExecutionTarget.Cuda
            ? new OrtMemoryInfo(OrtMemoryInfo.allocatorCUDA, OrtAllocatorType.DeviceAllocator, options.CudaDeviceId, OrtMemType.Default)
            : new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
    }

    public ExecutionTarget Target { get; }

    /// <summary>How the engine schedules the runs of a batch, handed to every snapshot it loads.</summary>
    internal RunSettings RunSettings { get; }

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

    /// <summary>
    /// Whether <paramref name="bundle"/> serves its float16 graphs (<c>Inference:Precision</c>; Auto:
    /// on CUDA when the bundle has them). Float16 asked for and absent stops the load naming the field.
    /// </summary>
    public bool UsesFloat16Graphs(Bundles.ModelBundle bundle)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        return _options.Precision switch
        {
            GraphPrecision.Default => false,
            GraphPrecision.Float16 => bundle.Float16TrunkPath is not null
                ? true
                : throw new Bundles.BundleValidationException(Bundles.BundleLoader.ManifestFileName, "trunk.float16",
                    "Inference:Precision is Float16 but the bundle has no float16 trunk (add one with `mtbert bundle add-cuda-trunk`)"),
            _ => Target == ExecutionTarget.Cuda && bundle.Float16TrunkPath is not null,
        };
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
