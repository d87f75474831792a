using MultiTaskBert.Api.Errors;

namespace MultiTaskBert.Api.Hosting;

internal static class ProblemResponsesServiceCollectionExtensions
{
    /// <summary>Problem details for every failure, including model binding errors.</summary>
    public static IServiceCollection AddProblemResponses(this IServiceCollection services)
    {
        // Before the default writer (writers are tried in registration order): the embedding APIs' own shapes.
        services.AddSingleton<IProblemDetailsWriter, EmbeddingProblemDetailsWriter>();
        services.AddProblemDetails(o => o.CustomizeProblemDetails = ProblemDetailsDefaults.Customize);
        services.AddExceptionHandler<ProblemExceptionHandler>();
        // Make minimal APIs throw on unreadable bodies so the handler can name the field.
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        return services;
    }
}
