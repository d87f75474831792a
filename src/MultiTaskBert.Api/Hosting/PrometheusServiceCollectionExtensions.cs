using System.Diagnostics.Metrics;
using MultiTaskBert.Core;
using Prometheus;

namespace MultiTaskBert.Api.Hosting;

internal static class PrometheusServiceCollectionExtensions
{
    /// <summary>
    /// This host's Prometheus export (<see cref="PrometheusExport"/>); <c>MapMetrics</c> serves its
    /// registry. Per host, not prometheus-net's process-wide default registry, so two hosts in one
    /// process (the tests) each export their own measurements.
    /// </summary>
    public static IServiceCollection AddPrometheusExport(this IServiceCollection services)
    {
        services.AddSingleton<PrometheusExport>();
        return services;
    }
}

/// <summary>
/// A Prometheus registry fed by a meter adapter that listens to this host's "MultiTaskBert" meters
/// only (those its <see cref="IMeterFactory"/> created: engine, HTTP, batching queue), with buckets
/// fit for each unit, plus the .NET process metrics.
/// </summary>
internal sealed class PrometheusExport : IDisposable
{
    private readonly IDisposable _adapter;

    public PrometheusExport(IMeterFactory meterFactory)
    {
        Registry = Metrics.NewCustomRegistry();
        DotNetStats.Register(Registry);
        _adapter = MeterAdapter.StartListening(new MeterAdapterOptions
        {
            Registry = Registry,
            MetricFactory = Metrics.WithCustomRegistry(Registry), // its default writes to the process-wide registry
            InstrumentFilterPredicate = instrument =>
                instrument.Meter.Name == ServiceMeter.Name && ReferenceEquals(instrument.Meter.Scope, meterFactory),
            ResolveHistogramBuckets = instrument => instrument.Unit switch
            {
                "s" => [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
                "ms" => [0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
                _ => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
            },
        });
    }

    public CollectorRegistry Registry { get; }

    public void Dispose() => _adapter.Dispose();
}
