using Microsoft.OpenApi;
using MultiTaskBert.Core.HeadKinds;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>
/// Documents <see cref="TaskResult"/> (the value of the <c>/classify</c> map) as what it is on the
/// wire: an object that is one of the head kinds' result records or the per-task error record, with no discriminator (as
/// <see cref="HeadKindRegistry.DescribeResultUnion"/> serializes it).
/// <c>anyOf</c> rather than <c>oneOf</c>: the records are closed and their required members differ,
/// so exactly one matches either way, and NSwag generates a class for an object <c>anyOf</c> where
/// for a <c>oneOf</c> it references a type it never writes (<c>Anonymous</c>, CS0246). Typed access
/// per kind is the <c>/v2</c> shape's (<see cref="TaskAnswerSchemaFilter"/>).
/// Not Swashbuckle's <c>UseOneOfForPolymorphism</c>: that makes every member <c>allOf</c> the
/// (empty, closed) base schema, which a strict validator reads as "no properties".
/// </summary>
internal sealed class TaskResultUnionSchemaFilter : ISchemaFilter
{
    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (context.Type != typeof(TaskResult) || schema is not OpenApiSchema union)
        {
            return;
        }

        union.Type = JsonSchemaType.Object;
        union.Properties = null;
        union.AdditionalPropertiesAllowed = true;
        union.AnyOf = [.. HeadKindRegistry.ResultTypes.Select(member => context.SchemaGenerator.GenerateSchema(member, context.SchemaRepository))];
    }
}
