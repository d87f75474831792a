using System.Text.Json;
using MultiTaskBert.Core;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Errors;

/// <summary>
/// Maps exceptions to RFC 7807 problem details. Bad bodies (malformed JSON, wrong types, unknown
/// members, over-size) become 400/413 naming the JSON field; anything unexpected stays a 500
/// without internals.
/// </summary>
internal sealed partial class ProblemExceptionHandler(IProblemDetailsService problemDetails) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        ProblemDetails? problem = exception switch
        {
            BadHttpRequestException { InnerException: JsonException json } bad => InvalidJson(bad.StatusCode, json),
            JsonException json => InvalidJson(StatusCodes.Status400BadRequest, json),
            BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } => new ProblemDetails
            {
                Status = StatusCodes.Status413PayloadTooLarge,
                Title = "The request body is too large.",
                Detail = "(body): exceeds Limits:MaxRequestBodyBytes",
            },
            BadHttpRequestException bad => new ProblemDetails
            {
                Status = bad.StatusCode,
                Title = "The request is invalid.",
                Detail = $"(body): {bad.Message}",
            },
            EngineNotReadyException notReady => new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "The model is not ready.",
                Detail = notReady.Message,
            },
            QueueFullException full => new ProblemDetails
            {
                Status = StatusCodes.Status503ServiceUnavailable,
                Title = "The service is overloaded.",
                Detail = $"(body): {full.Message}",
            },
            _ => null,
        };
        if (problem is null)
        {
            return false; // The default handler writes a bare 500 problem.
        }

        httpContext.Response.StatusCode = problem.Status!.Value;
        if (problem.Status == StatusCodes.Status503ServiceUnavailable)
        {
            // A full queue drains in milliseconds and a model loads in seconds; one second is a polite back-off.
            httpContext.Response.Headers.RetryAfter = "1";
        }

        return await problemDetails.TryWriteAsync(new ProblemDetailsContext
        {
            HttpContext = httpContext,
            ProblemDetails = problem,
            Exception = exception,
        });
    }

    private static HttpValidationProblemDetails InvalidJson(int status, JsonException json)
    {
        string field = JsonErrorField.Of(json, "(body)");
        string message = JsonErrorField.MessageOf(json);
        return new HttpValidationProblemDetails(new Dictionary<string, string[]> { [field] = [message] })
        {
            Status = status,
            Title = "The request body is not valid JSON for this endpoint.",
            Detail = $"{field}: {message}",
        };
    }
}
