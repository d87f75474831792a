using Microsoft.OpenApi;
using MultiTaskBert.Core.HeadKinds;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>
/// Documents <see cref="TaskResult"/> as what it is on the wire: <c>oneOf</c> the head kinds' result
/// records and the per-task error record, with no discriminator (as <see cref="HeadKindRegistry.DescribeResultUnion"/> serializes it).
/// A filter rather than Swashbuckle's <c>UseOneOfForPolymorphism</c>: that option makes every member
/// <c>allOf</c> the (empty, closed) base schema, which a strict validator reads as "no properties".
/// </summary>
internal sealed class TaskResultUnionSchemaFilter : ISchemaFilter
{
    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (context.Type != typeof(TaskResult) || schema is not OpenApiSchema union)
        {
            return;
        }

        union.Type = null;
        union.Properties = null;
        union.AdditionalPropertiesAllowed = true;
        union.OneOf = [.. HeadKindRegistry.ResultTypes.Select(member => context.SchemaGenerator.GenerateSchema(member, context.SchemaRepository))];
    }
}
