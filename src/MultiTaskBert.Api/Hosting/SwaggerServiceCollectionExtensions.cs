using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.Hosting;

internal static class SwaggerServiceCollectionExtensions
{
    /// <summary>The OpenAPI document (request examples, the admin key scheme, the task result union, XML comments).</summary>
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
            o.SchemaFilter<TaskResultUnionSchemaFilter>();
            // The Core's comments too: the answer records (HeadKinds) live there.
            foreach (string project in (string[])["MultiTaskBert.Api", "MultiTaskBert.Core"])
            {
                string xml = Path.Combine(AppContext.BaseDirectory, $"{project}.xml");
                if (File.Exists(xml))
                {
                    o.IncludeXmlComments(xml);
                }
            }
        });
        // The admin operations and their key scheme are documented only when the admin API is on (Admin:ApiKey set).
        services.AddOptions<SwaggerGenOptions>().Configure<IOptions<AdminOptions>>((swagger, admin) =>
        {
            swagger.SwaggerGeneratorOptions.DocInclusionPredicate = (_, api) =>
                admin.Value.Enabled || api.RelativePath?.StartsWith("admin/", StringComparison.Ordinal) != true;
            if (admin.Value.Enabled)
            {
                swagger.AddSecurityDefinition(AdminApiKeyOperationFilter.SchemeName, new Microsoft.OpenApi.OpenApiSecurityScheme
                {
                    Type = Microsoft.OpenApi.SecuritySchemeType.ApiKey,
                    In = Microsoft.OpenApi.ParameterLocation.Header,
                    Name = Endpoints.AdminEndpoints.ApiKeyHeader,
                    Description = "Admin:ApiKey of the service",
                });
            }
        });
        return services;
    }
}
