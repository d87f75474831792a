using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Api.Hosting;

internal static class EngineServiceCollectionExtensions
{
    /// <summary>Options (validated at start), the engine, and the start-up bundle load.</summary>
    public static IServiceCollection AddMultiTaskEngine(this IServiceCollection services)
    {
        services.AddOptions<ModelOptions>().BindConfiguration(ModelOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<InferenceOptions>().BindConfiguration(InferenceOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<LimitsOptions>().BindConfiguration(LimitsOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddOptions<KestrelServerOptions>()
            .Configure<IOptions<LimitsOptions>>((kestrel, limits) => kestrel.Limits.MaxRequestBodySize = limits.Value.MaxRequestBodyBytes);

        services.AddSingleton(sp => new OnnxSessionFactory(
            sp.GetRequiredService<IOptions<InferenceOptions>>().Value,
            sp.GetRequiredService<ILogger<OnnxSessionFactory>>()));
        services.AddSingleton<MultiTaskEngine>();
        services.AddHostedService<BundleLoaderService>();
        services.AddHealthChecks().AddCheck<ModelReadyHealthCheck>("model", tags: [ModelReadyHealthCheck.Tag]);
        return services;
    }
}
