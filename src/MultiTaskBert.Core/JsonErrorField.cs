using System.Text.Json;
using System.Text.RegularExpressions;

namespace MultiTaskBert.Core;

/// <summary>
/// The field a System.Text.Json error is about, as the services name fields: <c>$.tasks[0].head</c>
/// → <c>tasks[0].head</c>, and a member the message names (missing, or unknown to the type) appended
/// to the object that holds it. The manifest loader and the request problems share it.
/// </summary>
public static partial class JsonErrorField
{
    /// <param name="error">The deserializer's error.</param>
    /// <param name="document">What to call the document itself when the error is at its root (<c>(root)</c>, <c>(body)</c>).</param>
    public static string Of(JsonException error, string document)
    {
        ArgumentNullException.ThrowIfNull(error);
        string path = error.Path is null or "$" ? "" : error.Path.StartsWith("$.", StringComparison.Ordinal) ? error.Path[2..] : error.Path.TrimStart('$');
        Match named = NamedMember().Match(error.Message);
        if (named.Success)
        {
            string member = named.Groups[1].Value;
            return path.Length == 0 ? member : path.EndsWith(member, StringComparison.Ordinal) ? path : $"{path}.{member}";
        }

        return path.Length == 0 ? document : path;
    }

    /// <summary>The message without System.Text.Json's "Path: … | LineNumber: …" suffix.</summary>
    public static string MessageOf(JsonException error)
    {
        ArgumentNullException.ThrowIfNull(error);
        return PathSuffix().Replace(error.Message, "").Trim();
    }

    [GeneratedRegex("(?:missing required properties including: |The JSON property )'([^']+)'")]
    private static partial Regex NamedMember();

    [GeneratedRegex(@"\s*Path: .*$", RegexOptions.Singleline)]
    private static partial Regex PathSuffix();
}
