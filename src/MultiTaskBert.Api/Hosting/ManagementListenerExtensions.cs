using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.DependencyInjection.Extensions;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Management;

namespace MultiTaskBert.Api.Hosting;

/// <summary>The management listener (<c>Management:Port</c>): its address, and which endpoints answer where.</summary>
internal static class ManagementListenerExtensions
{
    public static IServiceCollection AddManagementListener(this IServiceCollection services)
    {
        services.AddOptions<ManagementOptions>().BindConfiguration(ManagementOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSingleton<ManagementListener>();
        services.AddTransient<IStartupFilter, ManagementAddressStartupFilter>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, ListenerMatcherPolicy>());
        return services;
    }

    /// <summary>The listeners the endpoint(s) answer on; without this, the public one only.</summary>
    public static TBuilder ServedOn<TBuilder>(this TBuilder builder, Listeners listeners)
        where TBuilder : IEndpointConventionBuilder => builder.WithMetadata(new ServedOnMetadata(listeners));

    /// <summary>Middleware that serves paths of its own (Swagger), run only for requests to the management listener.</summary>
    public static IApplicationBuilder UseOnManagementListener(this IApplicationBuilder app, Action<IApplicationBuilder> configure)
    {
        ManagementListener listener = app.ApplicationServices.GetRequiredService<ManagementListener>();
        return app.UseWhen(context => listener.Serves(context, Listeners.Management), configure);
    }
}
