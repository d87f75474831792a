using Microsoft.Extensions.Options;

namespace MultiTaskBert.Api.Errors;

/// <summary>
/// Writes a problem raised for an embedding endpoint (<see cref="EmbeddingErrorShape"/> metadata) in that
/// API's error shape: the body limit's 413 and the charset check's 415 come from middleware, a
/// chunked body past the limit from the exception handler, and OpenAI's and TEI's clients read
/// their own shape, not RFC 7807. Registered before the default writer, which handles the rest.
/// </summary>
/// <remarks>
/// Some problems are written without the embedding endpoint in the context: routing's 415 endpoint
/// (a Content-Type the endpoint's <c>Accepts</c> does not list) and the exception handler (it clears
/// the endpoint) stand in for it, so the endpoint is then found by the request's path (both routes are literal).
/// </remarks>
internal sealed class EmbeddingProblemDetailsWriter(EndpointDataSource endpoints, IOptions<ProblemDetailsOptions> options) : IProblemDetailsWriter
{
    public bool CanWrite(ProblemDetailsContext context) => ShapeOf(context) is not null;

    public ValueTask WriteAsync(ProblemDetailsContext context)
    {
        // The default writer applies the customization (the service's "field: message" details); so does this one.
        options.Value.CustomizeProblemDetails?.Invoke(context);
        HttpResponse response = context.HttpContext.Response;
        int status = context.ProblemDetails.Status ?? response.StatusCode;
        string message = context.ProblemDetails.Detail ?? context.ProblemDetails.Title ?? "The request failed.";
        // A validation problem names the request's field; the pipeline's 413/415 concern the body or a header, no field.
        string? field = context.ProblemDetails is HttpValidationProblemDetails { Errors.Count: 1 } validation
            ? validation.Errors.Keys.Single() is var key && !key.StartsWith('(') ? key : null
            : null;
        string code = EmbeddingErrorShapes.CodeOf(status);
        if (ShapeOf(context)!.Api == EmbeddingApi.OpenAi)
        {
            response.StatusCode = status;
            return new ValueTask(response.WriteAsJsonAsync(EmbeddingErrorShapes.OpenAi(status, field, message, code)));
        }

        (int teiStatus, Contracts.TeiErrorResponse body) = EmbeddingErrorShapes.Tei(status, message, code);
        response.StatusCode = teiStatus;
        return new ValueTask(response.WriteAsJsonAsync(body));
    }

    private EmbeddingErrorShape? ShapeOf(ProblemDetailsContext context) =>
        context.HttpContext.GetEndpoint()?.Metadata.GetMetadata<EmbeddingErrorShape>()
        ?? endpoints.Endpoints.OfType<RouteEndpoint>()
            .Where(e => string.Equals(e.RoutePattern.RawText, context.HttpContext.Request.Path.Value, StringComparison.OrdinalIgnoreCase))
            .Select(e => e.Metadata.GetMetadata<EmbeddingErrorShape>())
            .FirstOrDefault(shape => shape is not null);
}
