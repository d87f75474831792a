namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// A bundle cannot be served. <see cref="Exception.Message"/> always starts with
/// "<c>{File}: {Field}: </c>" so that a start-up log line says what to fix and where.
/// </summary>
public sealed class BundleValidationException : Exception
{
    public BundleValidationException(string file, string field, string problem, Exception? innerException = null)
        : base($"{file}: {field}: {problem}", innerException)
    {
        File = file;
        Field = field;
        Problem = problem;
    }

    /// <summary>Path of the offending file, relative to the bundle folder (e.g. <c>heads/sst2.onnx</c>).</summary>
    public string File { get; }

    /// <summary>Manifest field or graph element at fault (e.g. <c>tasks[1].output.labels</c>).</summary>
    public string Field { get; }

    public string Problem { get; }

    /// <summary>Control and format characters escaped (\u0000, \u202e), so that a message about them stays one readable line in reading order.</summary>
    public static string Printable(string text) =>
        string.Concat(text.Select(c => char.IsControl(c) || char.GetUnicodeCategory(c) == System.Globalization.UnicodeCategory.Format ? $"\\u{(int)c:x4}" : c.ToString()));
}
