using MultiTaskBert.Core.Inference;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Inference;

public sealed class RunSettingsTests
{
    [Theory]
    [InlineData(0, ExecutionTarget.Cpu, RunSettings.CpuMaxPassTokens)]
    [InlineData(0, ExecutionTarget.Cuda, int.MaxValue)]
    [InlineData(2048, ExecutionTarget.Cpu, 2048)]
    [InlineData(2048, ExecutionTarget.Cuda, 2048)]
    public void The_pass_limit_is_the_configured_one_or_the_devices_default(int configured, ExecutionTarget target, int expected) =>
        Assert.Equal(expected, RunSettings.PassLimit(configured, target));

    [Fact]
    public void The_service_on_a_cpu_caps_passes_at_the_cpu_default()
    {
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, new ListLogger<OnnxSessionFactory>());

        Assert.Equal(RunSettings.CpuMaxPassTokens, sessions.RunSettings.MaxPassTokens);
    }
}
