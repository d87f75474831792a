using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;

namespace MultiTaskBert.Api.Errors;

/// <summary>
/// Enforces <see cref="LimitsOptions.MaxRequestBodyBytes"/>: a declared Content-Length over the
/// limit is refused with 413 before the body is read; for chunked bodies the server's own limit
/// (set here per request) throws while reading, which <see cref="ProblemExceptionHandler"/> maps to 413.
/// </summary>
internal sealed class RequestBodyLimitMiddleware(RequestDelegate next, IOptions<LimitsOptions> limits, IProblemDetailsService problemDetails)
{
    public async Task InvokeAsync(HttpContext context)
    {
        long limit = context.GetEndpoint()?.Metadata.GetMetadata<RequestBodyLimitOverride>() is { } custom
            ? custom.Limit(context.RequestServices)
            : limits.Value.MaxRequestBodyBytes;
        if (context.Request.ContentLength > limit)
        {
            context.Response.StatusCode = StatusCodes.Status413PayloadTooLarge;
            await problemDetails.WriteAsync(new ProblemDetailsContext
            {
                HttpContext = context,
                ProblemDetails = new ProblemDetails
                {
                    Status = StatusCodes.Status413PayloadTooLarge,
                    Title = "The request body is too large.",
                    Detail = $"(body): must be at most {limit} bytes (Limits:MaxRequestBodyBytes), got {context.Request.ContentLength}",
                },
            });
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            sizeFeature.MaxRequestBodySize = limit;
        }

        await next(context);
    }
}

/// <summary>Endpoint metadata: this endpoint's own body limit (e.g. head uploads) instead of <c>Limits:MaxRequestBodyBytes</c>.</summary>
internal sealed record RequestBodyLimitOverride(Func<IServiceProvider, long> Limit);
