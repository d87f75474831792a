namespace MultiTaskBert.Core.Engine;

/// <summary>
/// A request the engine cannot serve as asked (unknown task, pair task without a text pair, a
/// fallback threshold out of range, …). Fields are named by the request's
/// <see cref="RequestFieldNames"/>: <c>tasks[1]</c>, <c>inputs[3].textPair</c>.
/// </summary>
public sealed class InvalidClassifyRequestException : Exception
{
    public InvalidClassifyRequestException(string field, string message)
        : this(new Dictionary<string, string[]>(StringComparer.Ordinal) { [field] = [message] })
    {
    }

    /// <param name="errors">Every problem found, by field (not empty), in the order found.</param>
    public InvalidClassifyRequestException(IReadOnlyDictionary<string, string[]> errors)
        : base(errors.First().Value[0])
    {
        Errors = errors;
        Field = errors.First().Key;
    }

    /// <summary>The first field with a problem.</summary>
    public string Field { get; }

    public IReadOnlyDictionary<string, string[]> Errors { get; }
}
