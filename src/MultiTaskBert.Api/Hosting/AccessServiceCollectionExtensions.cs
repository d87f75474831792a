using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Endpoints;

namespace MultiTaskBert.Api.Hosting;

/// <summary>Who may call the public API: <c>Auth:ApiKeys</c> (off by default) and <c>Cors:AllowedOrigins</c> (off by default).</summary>
internal static class AccessServiceCollectionExtensions
{
    public const string CorsPolicy = "configured-origins";

    public static IServiceCollection AddApiAccess(this IServiceCollection services)
    {
        services.AddOptions<AuthOptions>().BindConfiguration(AuthOptions.SectionName);
        services.AddOptions<CorsOptions>().BindConfiguration(CorsOptions.SectionName);
        services.AddCors();
        // X-Request-Id is echoed for log matching; Retry-After tells a browser when to retry a 503.
        services.AddOptions<Microsoft.AspNetCore.Cors.Infrastructure.CorsOptions>().Configure<IOptions<CorsOptions>>((cors, allowed) =>
            cors.AddPolicy(CorsPolicy, p => p.WithOrigins([.. allowed.Value.Origins])
                .WithMethods("GET", "POST", "DELETE").WithHeaders("Content-Type", AdminEndpoints.ApiKeyHeader, "X-Request-Id")
                .WithExposedHeaders("X-Request-Id", "Retry-After")));
        return services;
    }

    /// <summary>CORS for the configured origins; with none (the default) no CORS middleware runs (a preflight is a 405 as before).</summary>
    public static IApplicationBuilder UseApiCors(this IApplicationBuilder app)
    {
        IOptions<CorsOptions> allowed = app.ApplicationServices.GetRequiredService<IOptions<CorsOptions>>();
        return app.UseWhen(_ => allowed.Value.Origins.Count > 0, cors => cors.UseCors(CorsPolicy));
    }

    /// <summary>The public API's endpoints: a 401 problem without a key of <c>Auth:ApiKeys</c>, when keys are set.</summary>
    public static TBuilder RequirePublicApiKey<TBuilder>(this TBuilder builder)
        where TBuilder : IEndpointConventionBuilder => builder.AddEndpointFilter(async (context, next) =>
        {
            AuthOptions auth = context.HttpContext.RequestServices.GetRequiredService<IOptions<AuthOptions>>().Value;
            if (!auth.Enabled)
            {
                return await next(context);
            }

            Microsoft.Extensions.Primitives.StringValues given = context.HttpContext.Request.Headers[AdminEndpoints.ApiKeyHeader];
            return given.Count == 1 && auth.ApiKeys.Any(k => !string.IsNullOrEmpty(k) && AdminEndpoints.KeyMatches(given[0]!, k))
                ? await next(context)
                : TypedResults.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "API key required.",
                    detail: $"{AdminEndpoints.ApiKeyHeader}: missing or not one of Auth:ApiKeys");
        });
}
