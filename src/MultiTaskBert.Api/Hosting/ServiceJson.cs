using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Hosting;

/// <summary>The service's JSON settings for request and response bodies (one place, so tests serialize as the service does).</summary>
internal static class ServiceJson
{
    public static void Configure(JsonSerializerOptions options)
    {
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        // Strict bodies: {"text":"a","text":"b"} is a 400 (not last-wins), and "TEXT" is an unknown
        // member rather than "text" (the web defaults match names case-insensitively).
        options.AllowDuplicateProperties = false;
        options.PropertyNameCaseInsensitive = false;
        // A number is a JSON number: "0.5" in quotes is a 400 (the web defaults read numbers from strings).
        options.NumberHandling = JsonNumberHandling.Strict;
        // A task's answer is the union of the head kinds' result records, written without a discriminator.
        options.TypeInfoResolver = (options.TypeInfoResolver ?? new DefaultJsonTypeInfoResolver())
            .WithAddedModifier(HeadKindRegistry.DescribeResultUnion);
    }
}
