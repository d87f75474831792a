using MultiTaskBert.Api.Contracts;

namespace MultiTaskBert.Api.Errors;

/// <summary>Endpoint metadata: the endpoint answers for <paramref name="Api"/>, so its errors take that API's shape.</summary>
internal sealed record EmbeddingErrorShape(EmbeddingApi Api);

/// <summary>The foreign APIs whose error shapes the embedding endpoints owe their callers.</summary>
internal enum EmbeddingApi
{
    /// <summary>OpenAI's <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    OpenAi,

    /// <summary>text-embeddings-inference's <c>{"error", "error_type"}</c>.</summary>
    Tei,
}

/// <summary>
/// The two embedding APIs' error bodies and statuses, from one description of the failure
/// (status, field, message, a code in OpenAI's terms), for the endpoints' own refusals and for the
/// problems the pipeline writes before or around them (413, 415, 5xx).
/// </summary>
internal static class EmbeddingErrorShapes
{
    public static OpenAiErrorResponse OpenAi(int status, string? field, string message, string? code) =>
        new(new OpenAiError(message, status >= 500 ? "server_error" : "invalid_request_error", field, code));

    /// <summary>TEI's status and body: validation 413, empty 400, body not readable 422, overloaded 429, not ready 503; a status the pipeline chose (413, 415, …) stays.</summary>
    public static (int Status, TeiErrorResponse Body) Tei(int status, string message, string? code)
    {
        (int teiStatus, string type) = code switch
        {
            "empty" => (StatusCodes.Status400BadRequest, "empty"),
            "invalid_json" => (StatusCodes.Status422UnprocessableEntity, "validation"),
            "overloaded" => (StatusCodes.Status429TooManyRequests, "overloaded"),
            "unhealthy" => (StatusCodes.Status503ServiceUnavailable, "unhealthy"),
            "request_too_large" or "unsupported_media_type" or "pipeline" => (status, status >= 500 ? "backend" : "validation"),
            _ => (StatusCodes.Status413PayloadTooLarge, "validation"),
        };
        return (teiStatus, new TeiErrorResponse(message, type));
    }

    /// <summary>OpenAI's code for a status the pipeline answered with.</summary>
    public static string CodeOf(int status) => status switch
    {
        StatusCodes.Status413PayloadTooLarge => "request_too_large",
        StatusCodes.Status415UnsupportedMediaType => "unsupported_media_type",
        _ => "pipeline",
    };
}
