using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

/// <summary>One input of a batch.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class BatchInput
{
    public string? Text { get; init; }
    public string? TextPair { get; init; }
}
