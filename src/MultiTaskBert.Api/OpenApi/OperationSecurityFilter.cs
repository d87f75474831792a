using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using MultiTaskBert.Api.Configuration;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>
/// Security per operation, as the service enforces it: the <c>/admin</c> operations need the admin
/// key; the public API (every other documented operation) needs a key of <c>Auth:ApiKeys</c> when
/// that is set, and declares an empty requirement (open) when it is not.
/// </summary>
internal sealed class OperationSecurityFilter(IOptions<AuthOptions> auth) : IOperationFilter
{
    public const string AdminScheme = "AdminApiKey";
    public const string PublicScheme = "ApiKey";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        bool admin = context.ApiDescription.RelativePath?.StartsWith("admin/", StringComparison.Ordinal) == true;
        string? scheme = admin ? AdminScheme : auth.Value.Enabled ? PublicScheme : null;
        operation.Security = scheme is null
            ? []
            : [new OpenApiSecurityRequirement { [new OpenApiSecuritySchemeReference(scheme, context.Document)] = [] }];
        if (scheme == PublicScheme && operation.Responses is { } responses && !responses.ContainsKey("401"))
        {
            responses["401"] = new OpenApiResponse
            {
                Description = "Unauthorized",
                Content = new Dictionary<string, IOpenApiMediaType>(StringComparer.Ordinal)
                {
                    ["application/problem+json"] = new OpenApiMediaType { Schema = new OpenApiSchemaReference("ProblemDetails", context.Document) },
                },
            };
        }
    }
}

/// <summary>Declares <c>Retry-After</c> on every 503 (a full queue or a model not loaded yet: retry after that many seconds).</summary>
internal sealed class RetryAfterOperationFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        if (operation.Responses?.TryGetValue("503", out IOpenApiResponse? response) != true || response is not OpenApiResponse unavailable)
        {
            return;
        }

        unavailable.Headers ??= new Dictionary<string, IOpenApiHeader>(StringComparer.Ordinal);
        unavailable.Headers["Retry-After"] = new OpenApiHeader
        {
            Description = "Seconds to wait before retrying.",
            Schema = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32" },
        };
    }
}
