using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Endpoints;
using MultiTaskBert.Api.Errors;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Api.Operations;
using MultiTaskBert.Core;
using Prometheus;
using Serilog;
using Serilog.Formatting.Compact;

namespace MultiTaskBert.Api.Hosting;

/// <summary>
/// Running in production: admin API options, Prometheus export of the "MultiTaskBert" meter,
/// request ids, per-request timeouts, graceful shutdown with readiness, log format.
/// </summary>
internal static class OperationsServiceCollectionExtensions
{
    private static int _prometheusConfigured;

    public static IServiceCollection AddOperations(this IServiceCollection services)
    {
        services.AddOptions<AdminOptions>().BindConfiguration(AdminOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<ShutdownOptions>().BindConfiguration(ShutdownOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LogFormatOptions>().BindConfiguration(LogFormatOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<HostOptions>()
            .Configure<IOptions<ShutdownOptions>>((host, shutdown) =>
                host.ShutdownTimeout = TimeSpan.FromMilliseconds(shutdown.Value.DrainDelayMs) + TimeSpan.FromSeconds(shutdown.Value.TimeoutSeconds));

        services.AddSingleton<DrainState>();
        services.AddHostedService<GracefulShutdownService>();
        services.AddHealthChecks().AddCheck<NotDrainingHealthCheck>("not-draining", tags: [ModelReadyHealthCheck.Tag]);

        services.AddRequestTimeouts();
        services.AddOptions<RequestTimeoutOptions>().Configure<IOptions<LimitsOptions>>((timeouts, limits) =>
            timeouts.DefaultPolicy = new RequestTimeoutPolicy
            {
                Timeout = TimeSpan.FromMilliseconds(limits.Value.RequestTimeoutMs),
                TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
                WriteTimeoutResponse = WriteTimeoutAsync,
            });

        ConfigurePrometheus();
        return services;
    }

    /// <summary>
    /// Exports every instrument of the shared "MultiTaskBert" meter (engine, HTTP, batching queue)
    /// through prometheus-net's meter adapter, with buckets fit for each unit.
    /// </summary>
    private static void ConfigurePrometheus()
    {
        // Process-wide (prometheus-net's default registry); several hosts in one process (tests) configure it once.
        if (Interlocked.Exchange(ref _prometheusConfigured, 1) == 1)
        {
            return;
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
    }

    private static Task WriteTimeoutAsync(HttpContext context)
    {
        int limit = context.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.RequestTimeoutMs;
        return context.WriteProblemAsync(StatusCodes.Status504GatewayTimeout, "The request timed out.",
            $"(request): not answered within {limit} ms (Limits:RequestTimeoutMs)");
    }

    /// <summary>Console sink: text lines, or one compact JSON object per event (<c>Logging:Format=json</c>).</summary>
    public static LoggerConfiguration WriteToConsole(this LoggerConfiguration logger, IConfiguration configuration) =>
        string.Equals(configuration["Logging:Format"], "json", StringComparison.OrdinalIgnoreCase)
            ? logger.WriteTo.Console(new RenderedCompactJsonFormatter())
            : logger.WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj} {Properties:j}{NewLine}{Exception}",
                formatProvider: System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Request id first (outermost), so every log line of the request carries it.</summary>
    public static IApplicationBuilder UseRequestIds(this IApplicationBuilder app) => app.UseMiddleware<RequestIdMiddleware>();

    /// <summary>Request metrics; outside the exception handler, so they see the final status code.</summary>
    public static IApplicationBuilder UseRequestMetrics(this IApplicationBuilder app) => app.UseMiddleware<RequestMetrics>();

    /// <summary><c>/metrics</c> (Prometheus text format) and the admin endpoints.</summary>
    public static IEndpointRouteBuilder MapOperations(this IEndpointRouteBuilder routes)
    {
        routes.MapMetrics("/metrics").DisableRequestTimeout();
        routes.MapAdminEndpoints();
        return routes;
    }

    /// <summary>Classify endpoints: record which tasks each request named (for <c>mtbert.requests</c>).</summary>
    public static RouteGroupBuilder WithTaskMetrics(this RouteGroupBuilder group) => group.AddEndpointFilter(RequestMetrics.CaptureTasks);
}
