using Microsoft.Extensions.Diagnostics.HealthChecks;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Api.Health;

/// <summary>
/// The readiness detail of the bundle versions: healthy while serving the newest published version
/// (or catching up to it); degraded (still 200: the served version answers) while the newest one
/// is refused, naming it and why.
/// </summary>
internal sealed class BundleVersionHealthCheck(BundleRegistry registry) : IHealthCheck
{
    /// <summary>Its registration name: the readiness answer always carries its line.</summary>
    public const string Name = "bundle-version";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (registry.Status is not { } status)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("No bundle version is served yet."));
        }

        return Task.FromResult(status.Refused is null
            ? HealthCheckResult.Healthy(status.Describe())
            : HealthCheckResult.Degraded(status.Describe()));
    }
}
