using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Api.Hosting;

internal static class EngineServiceCollectionExtensions
{
    /// <summary>Options (validated at start), the engine, the registry, the start-up bundle load and the follower of published versions.</summary>
    public static IServiceCollection AddMultiTaskEngine(this IServiceCollection services)
    {
        services.AddOptions<ModelOptions>().BindConfiguration(ModelOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<InferenceOptions>().BindConfiguration(InferenceOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<HeadGuardOptions>().BindConfiguration(HeadGuardOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<KestrelServerOptions>()
            .Configure<IOptions<LimitsOptions>>((kestrel, limits) => kestrel.Limits.MaxRequestBodySize = limits.Value.MaxRequestBodyBytes);

        services.AddSingleton(sp => new OnnxSessionFactory(
            sp.GetRequiredService<IOptions<InferenceOptions>>().Value, sp.GetRequiredService<ILogger<OnnxSessionFactory>>(),
            sp.GetRequiredService<IOptions<HeadGuardOptions>>().Value));
        // One holder of the snapshot in service, shared by the engine (leases and runs it) and the
        // registry (swaps it). The engine reads the Batching section (AddMicroBatching binds it) and HeadGuards itself.
        services.AddSingleton<SnapshotHolder>();
        services.AddSingleton<EngineMetrics>();
        services.AddSingleton<MultiTaskEngine>();
        services.AddOptions<RegistryOptions>().BindConfiguration(RegistryOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        // The published versions live in the bundle folder itself (shared by the replicas).
        services.AddSingleton(sp => new BundleRegistry(
            sp.GetRequiredService<OnnxSessionFactory>(), sp.GetRequiredService<SnapshotHolder>(), sp.GetRequiredService<MultiTaskEngine>(),
            sp.GetRequiredService<ILogger<BundleRegistry>>(), sp.GetRequiredService<IOptions<RegistryOptions>>().Value,
            directory => new FolderVersionStore(directory)));
        services.AddSingleton(sp => new RegistryMetrics(sp.GetRequiredService<BundleRegistry>(), sp.GetRequiredService<System.Diagnostics.Metrics.IMeterFactory>()));
        services.AddHostedService<BundleLoaderService>();
        services.AddHostedService<BundleFollowerService>();
        services.AddHealthChecks()
            .AddCheck<ModelReadyHealthCheck>("model", tags: [ModelReadyHealthCheck.Tag])
            .AddCheck<BundleVersionHealthCheck>(BundleVersionHealthCheck.Name, tags: [ModelReadyHealthCheck.Tag]);
        return services;
    }
}
