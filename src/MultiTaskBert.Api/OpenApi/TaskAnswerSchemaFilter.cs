using Microsoft.OpenApi;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core.HeadKinds;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>
/// Documents <see cref="TaskAnswer"/> (the <c>/v2</c> answer) as a base schema with <c>task</c> and
/// <c>kind</c>, <c>kind</c> being the discriminator, and one schema per registered head kind
/// (<c>ClassificationAnswer</c>, …) that is <c>allOf</c> the base and the kind's result record's
/// members. Kiota and NSwag generate a class hierarchy from it, openapi-typescript a type per kind
/// with <c>kind</c> as a literal. Kinds come from <see cref="HeadKindRegistry"/>, so a new kind is
/// documented without a change here.
/// </summary>
internal sealed class TaskAnswerSchemaFilter : ISchemaFilter
{
    public const string BaseName = nameof(TaskAnswer);

    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (context.Type != typeof(TaskAnswer) || schema is not OpenApiSchema answer)
        {
            return;
        }

        answer.Type = JsonSchemaType.Object;
        answer.AdditionalPropertiesAllowed = true;
        answer.Required = new HashSet<string>(["task", "kind"], StringComparer.Ordinal);
        answer.Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
        {
            ["task"] = new OpenApiSchema { Type = JsonSchemaType.String, Description = "The task's name (GET /tasks)." },
            ["kind"] = new OpenApiSchema
            {
                Type = JsonSchemaType.String,
                Description = "The task's head kind: which record this answer is.",
                Enum = [.. HeadKindRegistry.Kinds.Select(k => (System.Text.Json.Nodes.JsonNode)k.Name)],
            },
        };
        answer.Discriminator = new OpenApiDiscriminator
        {
            PropertyName = "kind",
            Mapping = HeadKindRegistry.Kinds.ToDictionary(
                k => k.Name, k => new OpenApiSchemaReference(AddKindSchema(k, context)), StringComparer.Ordinal),
        };
    }

    /// <summary>Adds <c>{Kind}Answer</c>: the base and the kind's result members; returns its name.</summary>
    private static string AddKindSchema(HeadKind kind, SchemaFilterContext context)
    {
        string name = SchemaName(kind);
        if (context.SchemaRepository.Schemas.ContainsKey(name))
        {
            return name;
        }

        var result = (OpenApiSchemaReference)context.SchemaGenerator.GenerateSchema(kind.ResultType, context.SchemaRepository);
        var record = (OpenApiSchema)context.SchemaRepository.Schemas[result.Reference.Id!];
        context.SchemaRepository.AddDefinition(name, new OpenApiSchema
        {
            Description = $"The answer of a {kind.Name} task. {record.Description}",
            AllOf =
            [
                new OpenApiSchemaReference(BaseName),
                new OpenApiSchema
                {
                    Type = JsonSchemaType.Object,
                    Required = record.Required is null ? null : new HashSet<string>(record.Required, StringComparer.Ordinal),
                    Properties = record.Properties is null ? null : new Dictionary<string, IOpenApiSchema>(record.Properties, StringComparer.Ordinal),
                },
            ],
        });
        return name;
    }

    /// <summary><c>classification</c> → <c>ClassificationAnswer</c>.</summary>
    public static string SchemaName(HeadKind kind) => $"{char.ToUpperInvariant(kind.Name[0])}{kind.Name[1..]}Answer";
}
