using System.Text.Json.Nodes;
using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>Named request-body examples attached to an endpoint as metadata; shown by Swagger UI.</summary>
internal sealed record RequestExamples(IReadOnlyDictionary<string, JsonNode> Examples)
{
    public static readonly RequestExamples Classify = new(new Dictionary<string, JsonNode>
    {
        ["single sentence, every single-sentence task"] = new JsonObject { ["text"] = "the movie was a delight from start to finish" },
        ["sentence pair, every pair task"] = new JsonObject
        {
            ["text"] = "A man is playing a guitar.",
            ["textPair"] = "Someone plays an instrument.",
        },
        ["chosen tasks"] = new JsonObject
        {
            ["text"] = "the plot is thin but the acting is great",
            ["tasks"] = new JsonArray("sst2"),
        },
        ["slot filling (tagging): word tags and entities with character offsets"] = new JsonObject
        {
            ["text"] = "wake me up at 7 am tomorrow",
            ["tasks"] = new JsonArray("snips_slots"),
        },
        ["out of scope: the fallback label when the intent head is unsure, at this request's own threshold"] = new JsonObject
        {
            ["text"] = "what is the boiling point of mercury",
            ["tasks"] = new JsonArray("clinc150", "banking77"),
            ["fallbackThresholds"] = new JsonObject { ["clinc150"] = 0.5 },
        },
    });

    public static readonly RequestExamples ClassifyBatch = new(new Dictionary<string, JsonNode>
    {
        ["two sentences"] = new JsonObject
        {
            ["inputs"] = new JsonArray(
                new JsonObject { ["text"] = "a gripping, beautifully shot film" },
                new JsonObject { ["text"] = "two hours I will never get back" }),
        },
        ["pairs with chosen tasks"] = new JsonObject
        {
            ["inputs"] = new JsonArray(
                new JsonObject { ["text"] = "How do I reset my password?", ["textPair"] = "I forgot my password, what now?" }),
            ["tasks"] = new JsonArray("qqp"),
        },
    });
}

/// <summary>Copies <see cref="RequestExamples"/> metadata into the operation's JSON request body.</summary>
internal sealed class RequestExamplesOperationFilter : IOperationFilter
{
    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        RequestExamples? examples = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<RequestExamples>().FirstOrDefault();
        if (examples is null || operation.RequestBody?.Content is not { } content
            || !content.TryGetValue("application/json", out IOpenApiMediaType? media) || media is not OpenApiMediaType mediaType)
        {
            return;
        }

        mediaType.Examples = examples.Examples.ToDictionary(
            e => e.Key,
            e => (IOpenApiExample)new OpenApiExample { Summary = e.Key, Value = e.Value.DeepClone() });
    }
}
