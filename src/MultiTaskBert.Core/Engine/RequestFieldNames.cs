namespace MultiTaskBert.Core.Engine;

/// <summary>
/// How the fields of a classify request are named in its errors: their JSON path in the caller's
/// body. The endpoints' checks and the engine's both name fields here, so a name is made once
/// (a batch body's <c>inputs[3].textPair</c>, a one-input body's <c>textPair</c>).
/// </summary>
public sealed class RequestFieldNames
{
    private readonly string? _inputs;

    private RequestFieldNames(string? inputs) => _inputs = inputs;

    /// <summary>A body with an <c>inputs</c> array (the engine's default).</summary>
    public static RequestFieldNames Batch { get; } = new("inputs");

    /// <summary>A body that is one input: <c>text</c> and <c>textPair</c> at the top level.</summary>
    public static RequestFieldNames OneInput { get; } = new(null);

    public const string Inputs = "inputs";

    public const string Tasks = "tasks";

    /// <summary>Input <paramref name="index"/> itself (a batch body's array entry).</summary>
    public string Input(int index) => $"{_inputs ?? Inputs}[{index}]";

    /// <summary>A member (<c>text</c>, <c>textPair</c>) of input <paramref name="index"/>.</summary>
    public string Input(int index, string member) => _inputs is null ? member : $"{_inputs}[{index}].{member}";

    public static string Task(int index) => $"{Tasks}[{index}]";

    public static string FallbackThreshold(string task) => $"fallbackThresholds.{task}";
}
