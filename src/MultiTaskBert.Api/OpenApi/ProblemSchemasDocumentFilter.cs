using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>
/// The problem schemas as the service writes them: every problem has <c>type</c>, <c>title</c>,
/// <c>status</c>, <c>detail</c> ("field: limit", the primary message, marked for Kiota with
/// <c>x-ms-primary-error-message</c>) and <c>traceId</c> (the request id); a validation problem is
/// <c>allOf</c> that and <c>errors</c>, so generated clients see it as a kind of problem.
/// </summary>
internal sealed class ProblemSchemasDocumentFilter : IDocumentFilter
{
    private const string Problem = "ProblemDetails";
    private const string ValidationProblem = "HttpValidationProblemDetails";

    public void Apply(OpenApiDocument swaggerDoc, DocumentFilterContext context)
    {
        IDictionary<string, IOpenApiSchema>? schemas = swaggerDoc.Components?.Schemas;
        if (schemas is null || !schemas.ContainsKey(Problem))
        {
            return;
        }

        schemas[Problem] = new OpenApiSchema
        {
            Type = JsonSchemaType.Object,
            Description = "An RFC 9457 problem (application/problem+json).",
            Required = new HashSet<string>(["type", "title", "status", "detail", "traceId"], StringComparer.Ordinal),
            Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
            {
                ["type"] = Text("A URI naming the kind of problem."),
                ["title"] = Text("A short summary of the kind of problem."),
                ["status"] = new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Description = "The HTTP status code." },
                ["detail"] = PrimaryMessage(),
                ["instance"] = Text("The request path, when set."),
                ["traceId"] = Text("The request id (X-Request-Id): the caller's when valid, else the one the service assigned."),
            },
            AdditionalPropertiesAllowed = true,
        };
        if (schemas.ContainsKey(ValidationProblem))
        {
            schemas[ValidationProblem] = new OpenApiSchema
            {
                Description = "A 400 for bad input: a problem with every failing field's messages.",
                AllOf =
                [
                    new OpenApiSchemaReference(Problem, swaggerDoc),
                    new OpenApiSchema
                    {
                        Type = JsonSchemaType.Object,
                        Required = new HashSet<string>(["errors"], StringComparer.Ordinal),
                        Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                        {
                            ["errors"] = new OpenApiSchema
                            {
                                Type = JsonSchemaType.Object,
                                Description = "Messages by field path (e.g. inputs[2].text).",
                                AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, Items = new OpenApiSchema { Type = JsonSchemaType.String } },
                            },
                        },
                    },
                ],
            };
        }
    }

    private static OpenApiSchema Text(string description) => new() { Type = JsonSchemaType.String, Description = description };

    private static OpenApiSchema PrimaryMessage()
    {
        OpenApiSchema detail = Text("What was wrong, starting with the field and the limit, e.g. \"text: must be at most 2000 characters\".");
        detail.Extensions = new Dictionary<string, IOpenApiExtension>(StringComparer.Ordinal)
        {
            ["x-ms-primary-error-message"] = new JsonNodeExtension(JsonValue.Create(true)),
        };
        return detail;
    }
}
