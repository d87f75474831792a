using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Api.Operations;

namespace MultiTaskBert.Api.Hosting;

internal static class GracefulShutdownServiceCollectionExtensions
{
    /// <summary>
    /// Leaving a load balancer: the <c>Shutdown</c> options, readiness that turns false on the stop
    /// signal, and a host shutdown timeout that covers the drain delay plus in-flight requests.
    /// </summary>
    public static IServiceCollection AddGracefulShutdown(this IServiceCollection services)
    {
        services.AddOptions<ShutdownOptions>().BindConfiguration(ShutdownOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<HostOptions>()
            .Configure<IOptions<ShutdownOptions>>((host, shutdown) =>
                host.ShutdownTimeout = TimeSpan.FromMilliseconds(shutdown.Value.DrainDelayMs) + TimeSpan.FromSeconds(shutdown.Value.TimeoutSeconds));

        services.AddSingleton<DrainState>();
        services.AddHostedService<GracefulShutdownService>();
        services.AddHealthChecks().AddCheck<NotDrainingHealthCheck>("not-draining", tags: [ModelReadyHealthCheck.Tag]);
        return services;
    }

    /// <summary>The <c>Memory</c> options and the trimmer that gives memory back once the load stops.</summary>
    public static IServiceCollection AddIdleMemoryTrim(this IServiceCollection services)
    {
        services.AddOptions<MemoryOptions>().BindConfiguration(MemoryOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddHostedService<IdleMemoryTrimmer>();
        return services;
    }
}
