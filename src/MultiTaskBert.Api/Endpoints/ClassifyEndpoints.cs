using System.Text.Json;
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
    /// <summary>
    /// <c>/classify</c> (answers as a map task → result, unchanged since v1) and <c>/v2/classify</c>
    /// (the same answers as a list of records with <c>task</c> and <c>kind</c>, which generated clients type).
    /// </summary>
    public static RouteGroupBuilder MapClassifyEndpoints(this IEndpointRouteBuilder routes)
    {
        // Route patterns "/classify/" and "/classify/batch" as before: they are the `endpoint` label of the metrics.
        RouteGroupBuilder group = routes.MapGroup("").WithTags("Classify");
        RouteGroupBuilder v1 = group.MapGroup("/classify");
        RouteGroupBuilder v2 = group.MapGroup("/v2/classify");

        v1.MapPost("/", ClassifyAsync)
            .WithName("Classify")
            .WithSummary("Runs the bundle's tasks on one utterance (or utterance pair); answers by task name.")
            .WithMetadata(RequestExamples.Classify)
            .ProducesClassifyProblems();

        v1.MapPost("/batch", ClassifyBatchAsync)
            .WithName("ClassifyBatch")
            .WithSummary("Runs the tasks on several inputs with one trunk pass; results keep the input order.")
            .WithMetadata(RequestExamples.ClassifyBatch)
            .ProducesClassifyProblems();

        v2.MapPost("/", ClassifyV2Async)
            .WithName("ClassifyV2")
            .WithSummary("As POST /classify, with the answers as a list of records, each with its task and kind (the discriminator).")
            .WithMetadata(RequestExamples.ClassifyV2)
            .ProducesClassifyProblems();

        v2.MapPost("/batch", ClassifyBatchV2Async)
            .WithName("ClassifyBatchV2")
            .WithSummary("As POST /classify/batch, with each input's answers as a list of records, each with its task and kind.")
            .WithMetadata(RequestExamples.ClassifyBatchV2)
            .ProducesClassifyProblems();

        return group;
    }

    private static RouteHandlerBuilder ProducesClassifyProblems(this RouteHandlerBuilder endpoint) => endpoint
        .ProducesValidationProblem()
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
        .ProducesProblem(StatusCodes.Status504GatewayTimeout);

    internal static async Task<Results<CompleteJson<ClassifyResponse>, ValidationProblem>> ClassifyAsync(
        ClassifyRequest request, MicroBatcher batcher, MultiTaskEngine engine, IOptions<LimitsOptions> limits,
        IOptions<JsonOptions> json, IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        JsonSerializerOptions options = json.Value.SerializerOptions;
        return Respond(await RunAsync(request, batcher, engine, limits.Value, diagnostics, cancellationToken),
            result => new ClassifyResponse(result.Model, ContractMapper.ToResults(result.Results[0], request.FallbackThresholds, options)));
    }

    internal static async Task<Results<CompleteJson<ClassifyV2Response>, ValidationProblem>> ClassifyV2Async(
        ClassifyRequest request, MicroBatcher batcher, MultiTaskEngine engine, IOptions<LimitsOptions> limits,
        IOptions<JsonOptions> json, IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        JsonSerializerOptions options = json.Value.SerializerOptions;
        return Respond(await RunAsync(request, batcher, engine, limits.Value, diagnostics, cancellationToken),
            result => new ClassifyV2Response(result.Model, ContractMapper.ToAnswers(result.Results[0], request.FallbackThresholds, options)));
    }

    internal static async Task<Results<CompleteJson<ClassifyBatchResponse>, ValidationProblem>> ClassifyBatchAsync(
        ClassifyBatchRequest request, MicroBatcher batcher, MultiTaskEngine engine, IOptions<LimitsOptions> limits,
        IOptions<JsonOptions> json, IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        JsonSerializerOptions options = json.Value.SerializerOptions;
        return Respond(await RunBatchAsync(request, batcher, engine, limits.Value, diagnostics, cancellationToken),
            result => new ClassifyBatchResponse(result.Model, [.. result.Results.Select(r => ContractMapper.ToResults(r, request.FallbackThresholds, options))]));
    }

    internal static async Task<Results<CompleteJson<ClassifyBatchV2Response>, ValidationProblem>> ClassifyBatchV2Async(
        ClassifyBatchRequest request, MicroBatcher batcher, MultiTaskEngine engine, IOptions<LimitsOptions> limits,
        IOptions<JsonOptions> json, IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        JsonSerializerOptions options = json.Value.SerializerOptions;
        return Respond(await RunBatchAsync(request, batcher, engine, limits.Value, diagnostics, cancellationToken),
            result => new ClassifyBatchV2Response(result.Model, [.. result.Results.Select(r => new InputAnswers(ContractMapper.ToAnswers(r, request.FallbackThresholds, options)))]));
    }

    /// <summary>The run's answer in the endpoint's shape (serialized whole before its first byte), or its validation problem.</summary>
    private static Results<CompleteJson<T>, ValidationProblem> Respond<T>((RequestPredictions? Result, ValidationProblem? Invalid) run, Func<RequestPredictions, T> answer) =>
        run.Result is null ? run.Invalid! : new CompleteJson<T>(answer(run.Result));

    /// <summary>Validates and runs one input; exactly one of the pair is set.</summary>
    private static async Task<(RequestPredictions? Result, ValidationProblem? Invalid)> RunAsync(
        ClassifyRequest request, MicroBatcher batcher, MultiTaskEngine engine, LimitsOptions limits,
        IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        RecordRequest(diagnostics, request.Tasks, batchSize: 1);
        Dictionary<string, string[]> errors = new RequestValidator(limits, RequestFieldNames.OneInput).Validate(request);
        if (errors.Count > 0)
        {
            return (null, Invalid(WithThresholdProblems(errors, engine, request.FallbackThresholds)));
        }

        var query = new ClassifyQuery([new ClassifyInput(request.Text!, request.TextPair)], request.Tasks, request.FallbackThresholds, RequestFieldNames.OneInput);
        return await RunQueryAsync(batcher, query, cancellationToken);
    }

    /// <summary>Validates and runs a batch; exactly one of the pair is set.</summary>
    private static async Task<(RequestPredictions? Result, ValidationProblem? Invalid)> RunBatchAsync(
        ClassifyBatchRequest request, MicroBatcher batcher, MultiTaskEngine engine, LimitsOptions limits,
        IDiagnosticContext diagnostics, CancellationToken cancellationToken)
    {
        RecordRequest(diagnostics, request.Tasks, batchSize: request.Inputs?.Count ?? 0);
        Dictionary<string, string[]> errors = new RequestValidator(limits, RequestFieldNames.Batch).Validate(request);
        if (errors.Count > 0)
        {
            return (null, Invalid(WithThresholdProblems(errors, engine, request.FallbackThresholds)));
        }

        ClassifyInput[] inputs = [.. request.Inputs!.Select(i => new ClassifyInput(i!.Text!, i.TextPair))];
        return await RunQueryAsync(batcher, new ClassifyQuery(inputs, request.Tasks, request.FallbackThresholds, RequestFieldNames.Batch), cancellationToken);
    }

    /// <summary>Runs a checked request; what only the snapshot can check (tasks, thresholds) comes back as its problem.</summary>
    private static async Task<(RequestPredictions? Result, ValidationProblem? Invalid)> RunQueryAsync(
        MicroBatcher batcher, ClassifyQuery query, CancellationToken cancellationToken)
    {
        try
        {
            return (await batcher.ClassifyAsync(query, cancellationToken), null);
        }
        catch (InvalidClassifyRequestException ex)
        {
            return (null, Invalid(ex.Errors));
        }
    }

    /// <summary>A refused request's shape problems and then its threshold problems, so one answer names them all.</summary>
    private static Dictionary<string, string[]> WithThresholdProblems(
        Dictionary<string, string[]> errors, MultiTaskEngine engine, IReadOnlyDictionary<string, double>? thresholds)
    {
        foreach ((string field, string[] messages) in engine.FallbackThresholdProblems(thresholds))
        {
            errors.TryAdd(field, messages);
        }

        return errors;
    }

    private static void RecordRequest(IDiagnosticContext diagnostics, IReadOnlyList<string>? tasks, int batchSize)
    {
        diagnostics.Set("Tasks", tasks is null ? "(default)" : string.Join(",", tasks));
        diagnostics.Set("BatchSize", batchSize);
    }

    private static ValidationProblem Invalid(IReadOnlyDictionary<string, string[]> errors)
    {
        KeyValuePair<string, string[]> first = errors.First();
        return TypedResults.ValidationProblem(errors.ToDictionary(StringComparer.Ordinal),
            detail: $"{first.Key}: {first.Value[0]}",
            title: "The request is invalid.");
    }
}
