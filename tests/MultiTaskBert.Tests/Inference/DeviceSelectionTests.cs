using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Inference;

/// <summary>
/// Device selection on a machine without CUDA (the CPU ONNX Runtime package, or no GPU):
/// auto falls back to CPU and says why in one log line; cuda stops start-up.
/// </summary>
[Collection(StartUpCollection.Name)]
public sealed class DeviceSelectionTests
{
    private static bool CudaUsable => OnnxSessionFactory.ProbeCuda(0) is null;

    [Fact]
    public void Cpu_is_used_when_asked_for()
    {
        var logger = new ListLogger<OnnxSessionFactory>();
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, logger);

        Assert.Equal(ExecutionTarget.Cpu, sessions.Target);
        Assert.DoesNotContain(logger.Entries, e => e.Level >= LogLevel.Warning);
    }

    [Fact]
    public void Auto_falls_back_to_cpu_with_one_log_line_saying_why()
    {
        if (CudaUsable)
        {
            return; // A CUDA machine takes the CUDA path; nothing to fall back from.
        }

        var logger = new ListLogger<OnnxSessionFactory>();
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Auto }, logger);

        Assert.Equal(ExecutionTarget.Cpu, sessions.Target);
        var warning = Assert.Single(logger.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("falling back to CPU", warning.Message);
        Assert.Contains(OnnxSessionFactory.CudaProviderName, warning.Message);
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

        Assert.Contains("Inference:Device is cuda", error.Message);
    }

    [Fact]
    public void Api_start_up_fails_for_cuda_without_cuda()
    {
        if (CudaUsable)
        {
            return;
        }

        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Inference:Device"] = "cuda" });

        Exception error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());
        Assert.Contains("Inference:Device is cuda but CUDA cannot be used", error.ToString());
    }

    [Fact]
    public async Task Api_on_auto_serves_on_cpu()
    {
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Inference:Device"] = "auto" });
        using HttpClient client = factory.CreateClient();

        string ready = await client.GetStringAsync("/health/ready");

        Assert.Equal("Healthy", ready);
    }

    [Fact]
    public void Api_start_up_fails_for_an_invalid_bundle_naming_file_and_field()
    {
        using var bundle = new BundleCopy();
        bundle.EditManifest(m => m["tasks"]![0]!["branchLayer"] = 99);
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Model:BundlePath"] = bundle.Directory });

        Exception error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        var invalid = Assert.IsType<BundleValidationException>(error is AggregateException a ? a.Flatten().InnerException : error);
        Assert.Equal(("manifest.json", "tasks[0].branchLayer"), (invalid.File, invalid.Field));
    }

    [Theory]
    [InlineData("Limits:MaxTextChars", "0")]
    [InlineData("Limits:MaxBatchInputs", "-1")]
    [InlineData("Inference:IntraOpThreads", "-2")]
    [InlineData("Model:BundlePath", "")]
    public void Api_start_up_fails_for_invalid_options(string key, string value)
    {
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { [key] = value });

        Exception error = Assert.ThrowsAny<Exception>(() => factory.CreateClient());

        Assert.Contains(key.Split(':')[1], error.ToString());
        Assert.IsType<OptionsValidationException>(error is AggregateException a ? a.Flatten().InnerException : error);
    }
}
