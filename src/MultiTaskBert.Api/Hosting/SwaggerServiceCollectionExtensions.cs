using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.OpenApi;
using Swashbuckle.AspNetCore.Swagger;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.Hosting;

internal static class SwaggerServiceCollectionExtensions
{
    /// <summary>
    /// The OpenAPI document, written for client generators (Kiota, NSwag, openapi-typescript; tested
    /// by clients/test.sh): required and nullable as on the wire, the v2 answers discriminated by kind,
    /// problems as kinds of ProblemDetails, the head upload as a file part, security per operation,
    /// request and answer examples from the served bundle.
    /// </summary>
    public static IServiceCollection AddSwaggerDocs(this IServiceCollection services)
    {
        services.AddEndpointsApiExplorer();
        services.AddSwaggerGen(o =>
        {
            o.SwaggerDoc("v1", new OpenApiInfo
            {
                Title = "MultiTaskBert",
                Version = "v1",
                Description = "Many NLU classification tasks from one shared BERT trunk. POST /classify answers by task name "
                    + "(a map of task → result); POST /v2/classify gives the same answers as a list of records discriminated by "
                    + "`kind`, which generated clients type per kind.",
            });
            o.SupportNonNullableReferenceTypes();
            o.OperationAsyncFilter<RequestExamplesOperationFilter>();
            o.OperationFilter<OperationSecurityFilter>();
            o.OperationFilter<RetryAfterOperationFilter>();
            o.OperationFilter<HeadUploadOperationFilter>();
            o.SchemaFilter<WireSchemaFilter>();
            o.SchemaFilter<TaskInfoSchemaFilter>();
            o.SchemaFilter<TaskResultUnionSchemaFilter>();
            o.SchemaFilter<TaskAnswerSchemaFilter>();
            o.DocumentFilter<ProblemSchemasDocumentFilter>();
            o.DocumentFilter<TagsDocumentFilter>();
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
        // The admin operations and their key scheme are documented only when the admin API is on
        // (Admin:ApiKey set); the public API's key scheme only when Auth:ApiKeys has keys.
        services.AddOptions<SwaggerGenOptions>().Configure<IOptions<AdminOptions>, IOptions<AuthOptions>>((swagger, admin, auth) =>
        {
            swagger.SwaggerGeneratorOptions.DocInclusionPredicate = (_, api) =>
                admin.Value.Enabled || api.RelativePath?.StartsWith("admin/", StringComparison.Ordinal) != true;
            if (admin.Value.Enabled)
            {
                swagger.AddSecurityDefinition(OperationSecurityFilter.AdminScheme, ApiKeyScheme("Admin:ApiKey of the service (the /admin operations)."));
            }

            if (auth.Value.Enabled)
            {
                swagger.AddSecurityDefinition(OperationSecurityFilter.PublicScheme, ApiKeyScheme("One of Auth:ApiKeys (the public API)."));
            }
        });
        // servers: where this document was fetched from (a generated client's default base address).
        services.Configure<SwaggerOptions>(o => o.PreSerializeFilters.Add((document, request) =>
            document.Servers = [new OpenApiServer { Url = $"{request.Scheme}://{request.Host.Value}{request.PathBase}" }]));
        return services;
    }

    private static OpenApiSecurityScheme ApiKeyScheme(string description) => new()
    {
        Type = SecuritySchemeType.ApiKey,
        In = ParameterLocation.Header,
        Name = Endpoints.AdminEndpoints.ApiKeyHeader,
        Description = description,
    };
}
