using Microsoft.Net.Http.Headers;

namespace MultiTaskBert.Api.Errors;

/// <summary>
/// JSON bodies are UTF-8 (RFC 8259 §8.1). A JSON Content-Type naming another charset is refused
/// with 415 before anything reads the body: the framework's JSON reader would throw on an unknown
/// charset (<c>charset=bogus</c>) and on a quoted one (<c>charset="utf-8"</c>), which surfaced as 500s.
/// So a charset, when given, is exactly <c>utf-8</c> (any case).
/// </summary>
internal sealed class JsonCharsetMiddleware(RequestDelegate next)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (MediaTypeHeaderValue.TryParse(context.Request.ContentType, out MediaTypeHeaderValue? type)
            && (type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase) || type.Suffix.Equals("json", StringComparison.OrdinalIgnoreCase))
            && type.Charset.HasValue
            && !type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            await context.WriteProblemAsync(StatusCodes.Status415UnsupportedMediaType, "Unsupported media type.",
                $"Content-Type: charset '{type.Charset}' is not supported; JSON bodies must be UTF-8");
            return;
        }

        await next(context);
    }
}
