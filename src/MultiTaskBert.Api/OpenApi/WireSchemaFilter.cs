using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>
/// Makes <c>required</c> and <c>nullable</c> say what the wire does, so generated clients get
/// non-optional members where a value is always there.
/// Answers (written with <c>WhenWritingNull</c>): a member is required unless its C# type is
/// nullable, and never <c>nullable</c> (a null member is left out, not written as null).
/// Request bodies (<see cref="JsonUnmappedMemberHandlingAttribute"/> marks them): a member is
/// required when it is <see cref="RequiredAttribute"/>, which the endpoint's own validation enforces
/// with a 400 naming it.
/// </summary>
internal sealed class WireSchemaFilter : ISchemaFilter
{
    private static readonly NullabilityInfoContext Nullability = new();

    public void Apply(IOpenApiSchema schema, SchemaFilterContext context)
    {
        if (schema is not OpenApiSchema { Properties.Count: > 0 } target || IsManifest(context.Type))
        {
            return;
        }

        bool request = context.Type.GetCustomAttribute<JsonUnmappedMemberHandlingAttribute>() is not null;
        foreach (PropertyInfo property in context.Type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            string name = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.CamelCase.ConvertName(property.Name);
            if (!target.Properties.TryGetValue(name, out IOpenApiSchema? member))
            {
                continue;
            }

            bool required = request ? property.GetCustomAttribute<RequiredAttribute>() is not null : !IsNullable(property);
            if (required)
            {
                target.Required ??= new HashSet<string>(StringComparer.Ordinal);
                target.Required.Add(name);
            }

            if ((required || !request) && member is OpenApiSchema { Type: { } type } inline)
            {
                inline.Type = type & ~JsonSchemaType.Null;
            }
        }
    }

    /// <summary>The bundle manifest's records describe a file format with its own rules (docs/bundle-format.md); left as generated.</summary>
    private static bool IsManifest(Type type) => type.Namespace == typeof(Core.Bundles.TaskManifest).Namespace;

    private static bool IsNullable(PropertyInfo property) =>
        property.PropertyType.IsValueType
            ? Nullable.GetUnderlyingType(property.PropertyType) is not null
            : Nullability.Create(property).ReadState != NullabilityState.NotNull;
}
