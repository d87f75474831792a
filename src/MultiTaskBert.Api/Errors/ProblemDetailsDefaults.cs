using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;

namespace MultiTaskBert.Api.Errors;

/// <summary>
/// Fills in problems the framework writes on its own (status code pages: 404, 405, 415, …) so
/// that every problem says what was wrong in <c>detail</c>, in the same "field: message" form.
/// </summary>
internal static class ProblemDetailsDefaults
{
    public static void Customize(ProblemDetailsContext context)
    {
        // The request id (RequestIdMiddleware: the caller's X-Request-Id or the one assigned), so a
        // problem can be matched to the caller's logs and to ours; not the W3C trace id.
        context.ProblemDetails.Extensions["traceId"] = context.HttpContext.TraceIdentifier;
        if (context.ProblemDetails.Detail is not null)
        {
            return;
        }

        HttpRequest request = context.HttpContext.Request;
        context.ProblemDetails.Detail = context.ProblemDetails.Status switch
        {
            StatusCodes.Status404NotFound => $"(path): no endpoint at {request.Path}",
            StatusCodes.Status405MethodNotAllowed => $"(method): {request.Method} is not allowed on {request.Path}",
            StatusCodes.Status415UnsupportedMediaType => $"(body): Content-Type must be application/json, not '{request.ContentType}'",
            // A chunked body that outgrows the server's limit while being read.
            StatusCodes.Status413PayloadTooLarge =>
                $"(body): must be at most {context.HttpContext.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.MaxRequestBodyBytes} bytes (Limits:MaxRequestBodyBytes)",
            _ => null,
        };
    }
}
