using MultiTaskBert.Core;
using Prometheus;

namespace MultiTaskBert.Api.Hosting;

internal static class PrometheusServiceCollectionExtensions
{
    private static int _prometheusConfigured;

    /// <summary>
    /// Exports every instrument of the shared "MultiTaskBert" meter (engine, HTTP, batching queue)
    /// through prometheus-net's meter adapter, with buckets fit for each unit; <c>MapMetrics</c>
    /// serves them.
    /// </summary>
    public static IServiceCollection AddPrometheusExport(this IServiceCollection services)
    {
        // Process-wide (prometheus-net's default registry); several hosts in one process (tests) configure it once.
        if (Interlocked.Exchange(ref _prometheusConfigured, 1) == 1)
        {
            return services;
        }

        Metrics.ConfigureMeterAdapter(o =>
        {
            o.InstrumentFilterPredicate = instrument => instrument.Meter.Name == ServiceMeter.Name;
            o.ResolveHistogramBuckets = instrument => instrument.Unit switch
            {
                "s" => [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
                "ms" => [0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000],
                _ => [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096],
            };
        });

        // prometheus-net starts the meter adapter before the registry's first collection; collect
        // once now so that nothing measured before the first scrape is lost.
        Metrics.DefaultRegistry.CollectAndExportAsTextAsync(Stream.Null).GetAwaiter().GetResult();
        return services;
    }
}
