using Microsoft.Extensions.Diagnostics.HealthChecks;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Api.Health;

/// <summary>Ready once a bundle is loaded and its warm-up inference ran.</summary>
internal sealed class ModelReadyHealthCheck(SnapshotHolder snapshots, OnnxSessionFactory sessions) : IHealthCheck
{
    public const string Tag = "ready";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(snapshots.Current is { } bundle
            ? HealthCheckResult.Healthy($"{bundle.ModelId} serving {bundle.Tasks.Count} tasks on {sessions.Target}")
            : HealthCheckResult.Unhealthy("The model bundle is not loaded yet."));
}
