using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>A description for each tag the operations use.</summary>
internal sealed class TagsDocumentFilter : IDocumentFilter
{
    private static readonly Dictionary<string, string> Descriptions = new(StringComparer.Ordinal)
    {
        ["Classify"] = "Answers of the bundle's tasks for an utterance, a pair or a batch.",
        ["Tasks"] = "The loaded bundle's tasks: kind, labels, dev metrics, fallback.",
        ["Admin"] = "The hot task registry: add, replace, remove and reload tasks (Admin:ApiKey).",
    };

    public void Apply(OpenApiDocument swaggerDoc, DocumentFilterContext context)
    {
        IEnumerable<string> used = swaggerDoc.Paths.Values.SelectMany(p => p.Operations?.Values.AsEnumerable() ?? [])
            .SelectMany(o => o.Tags ?? new HashSet<OpenApiTagReference>()).Select(t => t.Name!).Distinct(StringComparer.Ordinal);
        swaggerDoc.Tags = new HashSet<OpenApiTag>(used.Order(StringComparer.Ordinal)
            .Select(name => new OpenApiTag { Name = name, Description = Descriptions.GetValueOrDefault(name, name) }));
    }
}
