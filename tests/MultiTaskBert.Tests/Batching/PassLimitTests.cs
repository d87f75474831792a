using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Tests.Batching;

public sealed class PassLimitTests
{
    [Theory]
    [InlineData(0, ExecutionTarget.Cpu, 512)] // measured on default@2.0.0 (docs/reliability.md); EngineMetricsTests sees the passes
    [InlineData(0, ExecutionTarget.Cuda, int.MaxValue)]
    [InlineData(2048, ExecutionTarget.Cpu, 2048)]
    [InlineData(2048, ExecutionTarget.Cuda, 2048)]
    public void The_pass_limit_is_the_configured_one_or_the_devices_default(int configured, ExecutionTarget target, int expected) =>
        Assert.Equal(expected, BatchingOptions.PassLimit(configured, target));
}
