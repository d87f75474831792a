using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Inference;

/// <summary>
/// Device selection on a machine without CUDA (the CPU ONNX Runtime package, or no GPU):
/// auto falls back to CPU and says why in one information line; cuda stops start-up naming what is
/// missing. CI runs these on both ONNX Runtime flavours (test.sh).
/// </summary>
[Collection(StartUpCollection.Name)]
public sealed class DeviceSelectionTests
{
    private static bool CudaUsable => OnnxRuntimeBuild.CudaUnavailableReason is null;

    [Fact]
    public void Cpu_is_used_when_asked_for()
    {
        var logger = new ListLogger<OnnxSessionFactory>();
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, logger);

        Assert.Equal(ExecutionTarget.Cpu, sessions.Target);
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public void Auto_falls_back_to_cpu_with_one_information_line_saying_why()
    {
        if (CudaUsable)
        {
            return; // A CUDA machine takes the CUDA path; nothing to fall back from (CudaGraphTests cover it).
        }

        var logger = new ListLogger<OnnxSessionFactory>();
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Auto }, logger);

        Assert.Equal(ExecutionTarget.Cpu, sessions.Target);
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
        var line = Assert.Single(logger.Entries);
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.StartsWith($"CUDA not available ({OnnxRuntimeBuild.CudaUnavailableReason}); running on CPU", line.Message);
    }

    /// <summary>
    /// The suite runs on the native library of the flavour it was built with: CI runs it once per
    /// flavour, so the fallback and refusal tests below run on the GPU package's library too.
    /// </summary>
    [Fact]
    public void The_native_library_is_the_one_of_the_flavour_built()
    {
        string[] providers = Microsoft.ML.OnnxRuntime.OrtEnv.Instance().GetAvailableProviders();
        string? library = OnnxRuntimeBuild.LoadedNativeLibrary();
        Assert.NotNull(library);
        bool cudaProviderBeside = File.Exists(Path.Combine(Path.GetDirectoryName(library)!, "libonnxruntime_providers_cuda.so"));
        if (OnnxRuntimeBuild.IsGpuFlavor)
        {
            Assert.Contains(OnnxSessionFactory.CudaProviderName, providers);
            Assert.True(cudaProviderBeside, $"{library}: no libonnxruntime_providers_cuda.so beside it");
        }
        else
        {
            Assert.DoesNotContain(OnnxSessionFactory.CudaProviderName, providers);
            Assert.False(cudaProviderBeside, $"{library}: a CUDA provider beside the CPU package's library");
        }
    }

    [Fact]
    public void The_reason_cuda_is_unavailable_names_what_is_missing()
    {
        if (CudaUsable)
        {
            return;
        }

        string reason = OnnxRuntimeBuild.CudaUnavailableReason!;
        if (OnnxRuntimeBuild.IsGpuFlavor)
        {
            // The GPU package has the provider: what is missing is its library's CUDA dependencies or a device.
            Assert.DoesNotContain("CPU package", reason);
            Assert.Contains("libonnxruntime_providers_cuda.so", reason);
        }
        else
        {
            Assert.Contains($"no {OnnxSessionFactory.CudaProviderName}", reason);
            Assert.Contains("-p:OnnxRuntimeFlavor=Gpu", reason);
        }
    }

    [Fact]
    public void Cuda_fails_when_cuda_is_unavailable()
    {
        if (CudaUsable)
        {
            return;
        }

        var error = Assert.Throws<InferenceDeviceUnavailableException>(() =>
            new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cuda }, new ListLogger<OnnxSessionFactory>()));

        Assert.Equal($"Inference:Device is cuda but CUDA cannot be used: {OnnxRuntimeBuild.CudaUnavailableReason}", error.Message);
    }

    [Fact]
    public async Task Api_start_up_fails_for_cuda_without_cuda()
    {
        if (CudaUsable)
        {
            return;
        }

        Exception error = await StartUpFailure.OfAsync(new Dictionary<string, string?> { ["Inference:Device"] = "cuda" });
        Assert.Contains("Inference:Device is cuda but CUDA cannot be used", error.ToString());
    }

    [Fact]
    public async Task Api_on_auto_serves_on_cpu()
    {
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Inference:Device"] = "auto" });
        using HttpClient client = factory.CreateClient();

        string ready = await client.GetStringAsync("/health/ready");

        Assert.StartsWith("Healthy: bundle version 0 ", ready);
    }

    [Fact]
    public async Task Api_start_up_fails_for_an_invalid_bundle_naming_file_and_field()
    {
        using var bundle = new BundleCopy();
        bundle.EditManifest(m => m["tasks"]![0]!["branchLayer"] = 99);

        Exception error = await StartUpFailure.OfAsync(new Dictionary<string, string?> { ["Model:BundlePath"] = bundle.Directory });

        var invalid = Assert.IsType<BundleValidationException>(error is AggregateException a ? a.Flatten().InnerException : error);
        Assert.Equal(("manifest.json", "tasks[0].branchLayer"), (invalid.File, invalid.Field));
    }

    [Theory]
    [InlineData("Limits:MaxTextChars", "0")]
    [InlineData("Limits:MaxBatchInputs", "-1")]
    [InlineData("Inference:IntraOpThreads", "-2")]
    [InlineData("Model:BundlePath", "")]
    public async Task Api_start_up_fails_for_invalid_options(string key, string value)
    {
        Exception error = await StartUpFailure.OfAsync(new Dictionary<string, string?> { [key] = value });

        Assert.Contains(key.Split(':')[1], error.ToString());
        Assert.IsType<OptionsValidationException>(error is AggregateException a ? a.Flatten().InnerException : error);
    }
}
