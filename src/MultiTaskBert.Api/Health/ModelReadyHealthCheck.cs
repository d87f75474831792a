using Microsoft.Extensions.Diagnostics.HealthChecks;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Api.Health;

/// <summary>
/// Ready once a bundle is loaded and its warm-up inference ran. Degraded (still 200: the other tasks
/// serve) while a head is quarantined, naming each such task and its last failure.
/// </summary>
internal sealed class ModelReadyHealthCheck(SnapshotHolder snapshots, OnnxSessionFactory sessions) : IHealthCheck
{
    public const string Tag = "ready";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (snapshots.Current is not { } bundle)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy("The model bundle is not loaded yet."));
        }

        string[] quarantined = [.. bundle.Quarantined.Select(q => $"task '{q.Task.Name}' version {q.Task.Version} is quarantined ({q.Reason})")];
        string serving = $"{bundle.ModelId} serving {bundle.Tasks.Count} tasks on {sessions.Target}";
        return Task.FromResult(quarantined.Length == 0
            ? HealthCheckResult.Healthy(serving)
            : HealthCheckResult.Degraded($"{serving}; {string.Join("; ", quarantined)}"));
    }

    /// <summary>
    /// The status, the bundle version served (always) and for anything but Healthy the checks'
    /// descriptions (what is quarantined, what is not loaded, which version is refused).
    /// </summary>
    public static Task WriteAsync(HttpContext context, HealthReport report)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(report);
        context.Response.ContentType = "text/plain; charset=utf-8";
        string[] details = [.. report.Entries
            .Where(e => (e.Value.Status != HealthStatus.Healthy || e.Key == BundleVersionHealthCheck.Name) && e.Value.Description is not null)
            .Select(e => e.Value.Description!)];
        return context.Response.WriteAsync(details.Length == 0 ? report.Status.ToString() : $"{report.Status}: {string.Join("; ", details)}");
    }
}
