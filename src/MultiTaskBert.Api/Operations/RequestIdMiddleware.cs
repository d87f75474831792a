using System.Text.RegularExpressions;
using Serilog.Context;

namespace MultiTaskBert.Api.Operations;

/// <summary>
/// Gives every request an id: the caller's <c>X-Request-Id</c> when it is 1–128 characters of
/// <c>[A-Za-z0-9._:-]</c> (e.g. set by nginx or a client), otherwise a new one. The id becomes
/// <see cref="HttpContext.TraceIdentifier"/> (so problem details carry it), is echoed in the
/// response header and is attached to every log event of the request as <c>RequestId</c>.
/// Outermost middleware, so the one-line request log carries it too.
/// </summary>
internal sealed partial class RequestIdMiddleware(RequestDelegate next)
{
    public const string HeaderName = "X-Request-Id";

    public async Task InvokeAsync(HttpContext context)
    {
        string? incoming = context.Request.Headers[HeaderName].Count == 1 ? context.Request.Headers[HeaderName][0] : null;
        string id = incoming is not null && ValidId().IsMatch(incoming) ? incoming : Guid.NewGuid().ToString("N");
        context.TraceIdentifier = id;
        context.Response.OnStarting(() =>
        {
            context.Response.Headers[HeaderName] = id;
            return Task.CompletedTask;
        });
        using (LogContext.PushProperty("RequestId", id))
        {
            await next(context);
        }
    }

    [GeneratedRegex("^[A-Za-z0-9._:-]{1,128}$")]
    private static partial Regex ValidId();
}
