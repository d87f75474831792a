using MultiTaskBert.Api.Operations;

namespace MultiTaskBert.Api.Hosting;

internal static class RequestMetricsExtensions
{
    /// <summary>Request metrics; outside the exception handler, so they see the final status code.</summary>
    public static IApplicationBuilder UseRequestMetrics(this IApplicationBuilder app) => app.UseMiddleware<RequestMetrics>();

    /// <summary>Classify endpoints: record which tasks each request named (for <c>mtbert.requests</c>).</summary>
    public static RouteGroupBuilder WithTaskMetrics(this RouteGroupBuilder group) => group.AddEndpointFilter(RequestMetrics.CaptureTasks);
}
