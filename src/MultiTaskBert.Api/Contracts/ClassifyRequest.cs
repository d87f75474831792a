using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Classify one utterance (or utterance pair).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ClassifyRequest
{
    /// <summary>The utterance.</summary>
    /// <example>the movie was a delight from start to finish</example>
    [Required] // checked by RequestValidator (a 400 naming the field); marked for the OpenAPI document
    public string? Text { get; init; }

    /// <summary>Second sentence, for pair tasks (paraphrase, entailment, similarity).</summary>
    public string? TextPair { get; init; }

    /// <summary>Tasks to run; default: every task whose input kind fits (single without textPair, pair with it).</summary>
    public IReadOnlyList<string>? Tasks { get; init; }

    /// <summary>Per task with a fallback (<c>GET /tasks</c>): this request's threshold instead of the bundle's, within the rule's range.</summary>
    public IReadOnlyDictionary<string, double>? FallbackThresholds { get; init; }
}
