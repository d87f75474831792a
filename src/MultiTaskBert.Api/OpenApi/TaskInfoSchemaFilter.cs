using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary><see cref="TaskInfo"/>'s <c>kind</c> and <c>input</c> as enums: the registered head kinds and the input kinds.</summary>
internal sealed class TaskInfoSchemaFilter : ISchemaFilter
{
    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (context.Type != typeof(TaskInfo) || schema is not OpenApiSchema { Properties: { } properties })
        {
            return;
        }

        if (properties.TryGetValue("kind", out IOpenApiSchema? kind) && kind is OpenApiSchema kindSchema)
        {
            kindSchema.Enum = [.. HeadKindRegistry.Kinds.Select(k => (JsonNode)k.Name)];
        }

        if (properties.TryGetValue("input", out IOpenApiSchema? input) && input is OpenApiSchema inputSchema)
        {
            inputSchema.Enum = [.. Enum.GetNames<TaskInputKind>().Select(n => (JsonNode)n.ToLowerInvariant())];
        }
    }
}
