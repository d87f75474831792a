using MultiTaskBert.Api.Operations;

namespace MultiTaskBert.Api.Hosting;

internal static class RequestIdExtensions
{
    /// <summary>Request id first (outermost), so every log line of the request carries it.</summary>
    public static IApplicationBuilder UseRequestIds(this IApplicationBuilder app) => app.UseMiddleware<RequestIdMiddleware>();
}
