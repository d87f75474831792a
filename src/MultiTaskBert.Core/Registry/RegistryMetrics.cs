using System.Diagnostics.Metrics;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// The registry's instruments on the <see cref="ServiceMeter"/>: the bundle version served here,
/// the newest published, how far behind that is, and the versions refused (failed validation).
/// </summary>
public sealed class RegistryMetrics : IDisposable
{
    private readonly Meter? _ownedMeter;

    public RegistryMetrics(BundleRegistry registry, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(registry);
        Meter meter = meterFactory?.Create(ServiceMeter.Name) ?? (_ownedMeter = new Meter(ServiceMeter.Name));
        meter.CreateObservableGauge("mtbert.bundle.version.served", () => Observe(registry, s => s.Served, model: true), unit: "{version}",
            description: "The published bundle version served by this replica (0: the bundle's manifest.json), labelled with its model id.");
        meter.CreateObservableGauge("mtbert.bundle.version.newest", () => Observe(registry, s => s.Newest, model: false), unit: "{version}",
            description: "The newest bundle version published by any replica, as this replica last saw it.");
        meter.CreateObservableGauge("mtbert.bundle.versions.behind", () => Observe(registry, s => s.Behind, model: false), unit: "{version}",
            description: "Published versions newer than the one served here (0 once converged; stays above 0 while the newest is refused).");
        meter.CreateObservableCounter("mtbert.bundle.versions.refused", () => Observe(registry, s => s.Refusals, model: false), unit: "{version}",
            description: "Published versions this replica refused to serve (failed validation); the readiness detail names the last one.");
    }

    private static IEnumerable<Measurement<long>> Observe(BundleRegistry registry, Func<VersionStatus, long> value, bool model) =>
        registry.Status is { } status
            ? [model ? new Measurement<long>(value(status), new KeyValuePair<string, object?>("model", status.Model)) : new Measurement<long>(value(status))]
            : [];

    public void Dispose() => _ownedMeter?.Dispose();
}
