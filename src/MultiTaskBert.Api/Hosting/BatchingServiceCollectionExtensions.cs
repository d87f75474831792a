using Microsoft.Extensions.Options;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Hosting;

internal static class BatchingServiceCollectionExtensions
{
    /// <summary>
    /// The <c>Batching</c> options (validated at start; the engine's run settings come from them
    /// too) and the micro-batcher the classify endpoints call.
    /// </summary>
    public static IServiceCollection AddMicroBatching(this IServiceCollection services)
    {
        services.AddOptions<BatchingOptions>()
            .BindConfiguration(BatchingOptions.SectionName)
            .Configure<IConfiguration>(DeprecatedBatchingKeys.Apply)
            .ValidateDataAnnotations()
            .ValidateOnStart();
        services.AddHostedService<DeprecatedBatchingKeys>();
        services.AddSingleton(sp => new MicroBatcher(
            sp.GetRequiredService<MultiTaskEngine>(),
            sp.GetRequiredService<IOptions<BatchingOptions>>().Value,
            sp.GetRequiredService<ILogger<MicroBatcher>>(),
            sp.GetService<System.Diagnostics.Metrics.IMeterFactory>()));
        return services;
    }
}
