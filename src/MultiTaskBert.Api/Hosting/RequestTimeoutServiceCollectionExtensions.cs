using Microsoft.AspNetCore.Http.Timeouts;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Errors;

namespace MultiTaskBert.Api.Hosting;

internal static class RequestTimeoutServiceCollectionExtensions
{
    /// <summary>
    /// One default timeout for every request, <c>Limits:RequestTimeoutMs</c>, answered 504 with a
    /// problem naming the setting. Endpoints that may take longer opt out (<c>DisableRequestTimeout</c>).
    /// </summary>
    public static IServiceCollection AddRequestTimeoutsFromLimits(this IServiceCollection services)
    {
        services.AddRequestTimeouts();
        services.AddOptions<RequestTimeoutOptions>().Configure<IOptions<LimitsOptions>>((timeouts, limits) =>
            timeouts.DefaultPolicy = new RequestTimeoutPolicy
            {
                Timeout = TimeSpan.FromMilliseconds(limits.Value.RequestTimeoutMs),
                TimeoutStatusCode = StatusCodes.Status504GatewayTimeout,
                WriteTimeoutResponse = WriteTimeoutAsync,
            });
        return services;
    }

    private static Task WriteTimeoutAsync(HttpContext context)
    {
        int limit = context.RequestServices.GetRequiredService<IOptions<LimitsOptions>>().Value.RequestTimeoutMs;
        return context.WriteProblemAsync(StatusCodes.Status504GatewayTimeout, "The request timed out.",
            $"(request): not answered within {limit} ms (Limits:RequestTimeoutMs)");
    }
}
