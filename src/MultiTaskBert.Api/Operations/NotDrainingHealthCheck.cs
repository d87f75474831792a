using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace MultiTaskBert.Api.Operations;

/// <summary>Readiness part: unhealthy once shutdown began.</summary>
internal sealed class NotDrainingHealthCheck(DrainState state) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(state.IsDraining
            ? HealthCheckResult.Unhealthy("The service is shutting down.")
            : HealthCheckResult.Healthy("Accepting requests."));
}
