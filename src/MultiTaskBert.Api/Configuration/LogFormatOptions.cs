using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>Configuration section <c>Logging</c> (the part this service reads; Serilog has its own section).</summary>
public sealed class LogFormatOptions
{
    public const string SectionName = "Logging";

    /// <summary><c>text</c> (human-readable console lines) or <c>json</c> (Serilog compact JSON, one event per line).</summary>
    [RegularExpression("^(text|json)$")]
    public string Format { get; set; } = "text";
}
