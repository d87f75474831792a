using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Api.OpenApi;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;
using Serilog;

namespace MultiTaskBert.Api.Endpoints;

internal static class ClassifyEndpoints
{
    public static RouteGroupBuilder MapClassifyEndpoints(this IEndpointRouteBuilder routes)
    {
        RouteGroupBuilder group = routes.MapGroup("/classify").WithTags("Classify");

        group.MapPost("/", ClassifyAsync)
            .WithName("Classify")
            .WithSummary("Runs the bundle's tasks on one utterance (or utterance pair).")
            .WithMetadata(RequestExamples.Classify)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);

        group.MapPost("/batch", ClassifyBatchAsync)
            .WithName("ClassifyBatch")
            .WithSummary("Runs the tasks on several inputs with one trunk pass; results keep the input order.")
            .WithMetadata(RequestExamples.ClassifyBatch)
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .ProducesProblem(StatusCodes.Status504GatewayTimeout);

        return group;
    }

    internal static async Task<Results<CompleteJson<ClassifyResponse>, ValidationProblem>> ClassifyAsync(
        ClassifyRequest request,
        MicroBatcher batcher,
        MultiTaskEngine engine,
        IOptions<LimitsOptions> limits,
        IOptions<JsonOptions> json,
        IDiagnosticContext diagnostics,
        CancellationToken cancellationToken)
    {
        RecordRequest(diagnostics, request.Tasks, batchSize: 1);
        Dictionary<string, string[]> errors = new RequestValidator(limits.Value).Validate(request);
        FallbackThresholdValidator.Validate(errors, request.FallbackThresholds, engine.Current);
        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        try
        {
            ClassifyBatchResult result = await batcher.ClassifyAsync([new ClassifyInput(request.Text!, request.TextPair)], request.Tasks, cancellationToken);
            return new CompleteJson<ClassifyResponse>(new ClassifyResponse(result.Model, ContractMapper.ToResults(result.Results[0], request.FallbackThresholds, json.Value.SerializerOptions)));
        }
        catch (InvalidClassifyRequestException ex)
        {
            // The engine speaks batch paths; this endpoint's body has no "inputs" level.
            return Invalid(ex.Field.StartsWith("inputs[0].", StringComparison.Ordinal) ? ex.Field["inputs[0].".Length..] : ex.Field, ex.Message);
        }
    }

    internal static async Task<Results<CompleteJson<ClassifyBatchResponse>, ValidationProblem>> ClassifyBatchAsync(
        ClassifyBatchRequest request,
        MicroBatcher batcher,
        MultiTaskEngine engine,
        IOptions<LimitsOptions> limits,
        IOptions<JsonOptions> json,
        IDiagnosticContext diagnostics,
        CancellationToken cancellationToken)
    {
        RecordRequest(diagnostics, request.Tasks, batchSize: request.Inputs?.Count ?? 0);
        Dictionary<string, string[]> errors = new RequestValidator(limits.Value).Validate(request);
        FallbackThresholdValidator.Validate(errors, request.FallbackThresholds, engine.Current);
        if (errors.Count > 0)
        {
            return Invalid(errors);
        }

        ClassifyInput[] inputs = [.. request.Inputs!.Select(i => new ClassifyInput(i!.Text!, i.TextPair))];
        try
        {
            ClassifyBatchResult result = await batcher.ClassifyAsync(inputs, request.Tasks, cancellationToken);
            return new CompleteJson<ClassifyBatchResponse>(new ClassifyBatchResponse(result.Model,
                [.. result.Results.Select(r => ContractMapper.ToResults(r, request.FallbackThresholds, json.Value.SerializerOptions))]));
        }
        catch (InvalidClassifyRequestException ex)
        {
            return Invalid(ex.Field, ex.Message);
        }
    }

    private static void RecordRequest(IDiagnosticContext diagnostics, IReadOnlyList<string>? tasks, int batchSize)
    {
        diagnostics.Set("Tasks", tasks is null ? "(default)" : string.Join(",", tasks));
        diagnostics.Set("BatchSize", batchSize);
    }

    private static ValidationProblem Invalid(string field, string message) => Invalid(new() { [field] = [message] });

    private static ValidationProblem Invalid(Dictionary<string, string[]> errors)
    {
        KeyValuePair<string, string[]> first = errors.First();
        return TypedResults.ValidationProblem(errors,
            detail: $"{first.Key}: {first.Value[0]}",
            title: "The request is invalid.");
    }
}
