namespace MultiTaskBert.Core;

/// <summary>
/// The one meter every MultiTaskBert instrument is recorded on (engine, batching queue, HTTP); the
/// service exports exactly this meter's instruments to Prometheus.
/// </summary>
public static class ServiceMeter
{
    public const string Name = "MultiTaskBert";
}
