using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

/// <summary>One input of a batch.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BatchInput
{
    [Required] // checked by RequestValidator (a 400 naming the field); marked for the OpenAPI document
    public string? Text { get; init; }
    public string? TextPair { get; init; }
}
