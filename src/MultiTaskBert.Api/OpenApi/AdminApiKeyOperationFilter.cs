using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>Marks the <c>/admin</c> operations as needing the <c>X-Api-Key</c> scheme (defined with the Swagger set-up).</summary>
internal sealed class AdminApiKeyOperationFilter : IOperationFilter
{
    public const string SchemeName = "AdminApiKey";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (context.ApiDescription.RelativePath?.StartsWith("admin/", StringComparison.Ordinal) != true)
        {
            return;
        }

        operation.Security ??= [];
        operation.Security.Add(new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(SchemeName, context.Document)] = [] });
    }
}
