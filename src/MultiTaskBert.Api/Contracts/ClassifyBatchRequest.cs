using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

/// <summary>Classify several inputs in one trunk pass.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed class ClassifyBatchRequest
{
    [Required] // checked by RequestValidator (a 400 naming the field); marked for the OpenAPI document
    public IReadOnlyList<BatchInput?>? Inputs { get; init; }

    /// <summary>Tasks to run for every input; default: per input, every task whose input kind fits.</summary>
    public IReadOnlyList<string>? Tasks { get; init; }

    /// <summary>Per task with a fallback (<c>GET /tasks</c>): this request's threshold instead of the bundle's, within the rule's range.</summary>
    public IReadOnlyDictionary<string, double>? FallbackThresholds { get; init; }
}
