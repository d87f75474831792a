using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Errors;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Api.OpenApi;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.Hosting;

internal static class ServiceCollectionExtensions
{
    /// <summary>Options (validated at start), the engine, the registry, and the start-up bundle load.</summary>
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
        // One holder of the snapshot in service, shared by the engine (runs it), the batcher (leases
        // it) and the registry (swaps it).
        services.AddSingleton<SnapshotHolder>();
        services.AddSingleton<EngineMetrics>();
        services.AddSingleton<MultiTaskEngine>();
        services.AddSingleton<BundleRegistry>();
        services.AddHostedService<BundleLoaderService>();
        services.AddHealthChecks().AddCheck<ModelReadyHealthCheck>("model", tags: [ModelReadyHealthCheck.Tag]);
        return services;
    }

    /// <summary>Problem details for every failure, including model binding errors.</summary>
    public static IServiceCollection AddProblemResponses(this IServiceCollection services)
    {
        services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemDetailsDefaults.Customize);
        services.AddExceptionHandler<ProblemExceptionHandler>();
        // Make minimal APIs throw on unreadable bodies so the handler can name the field.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        return services;
    }

    public static IServiceCollection AddSwaggerDocs(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new Microsoft.OpenApi.OpenApiInfo
            {
                Title = "MultiTaskBert",
                Version = "v1",
                Description = "Many NLU classification tasks from one shared BERT trunk.",
            });
            o.OperationFilter<RequestExamplesOperationFilter>();
            o.OperationFilter<AdminApiKeyOperationFilter>();
            o.AddSecurityDefinition(AdminApiKeyOperationFilter.SchemeName, new Microsoft.OpenApi.OpenApiSecurityScheme
            {
                Type = Microsoft.OpenApi.SecuritySchemeType.ApiKey,
                In = Microsoft.OpenApi.ParameterLocation.Header,
                Name = Endpoints.AdminEndpoints.ApiKeyHeader,
                Description = "Admin:ApiKey of the service",
            });
            string xml = Path.Combine(AppContext.BaseDirectory, "MultiTaskBert.Api.xml");
            if (File.Exists(xml))
            {
                o.IncludeXmlComments(xml);
            }
        });
        // The admin operations are documented only when the admin API is on (Admin:ApiKey set).
        services.AddOptions<SwaggerGenOptions>().Configure<IOptions<AdminOptions>>((swagger, admin) =>
            swagger.SwaggerGeneratorOptions.DocInclusionPredicate = (_, api) =>
                admin.Value.Enabled || api.RelativePath?.StartsWith("admin/", StringComparison.Ordinal) != true);
        return services;
    }
}
