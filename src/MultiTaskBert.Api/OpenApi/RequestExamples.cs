using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using Swashbuckle.AspNetCore.SwaggerGen;
using HttpJsonOptions = Microsoft.AspNetCore.Http.Json.JsonOptions;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>Endpoint metadata: which request examples the operation gets, and in which answer shape.</summary>
internal sealed record RequestExamples(bool Batch, bool ListShape = false)
{
    public static readonly RequestExamples Classify = new(Batch: false);
    public static readonly RequestExamples ClassifyBatch = new(Batch: true);
    public static readonly RequestExamples ClassifyV2 = new(Batch: false, ListShape: true);
    public static readonly RequestExamples ClassifyBatchV2 = new(Batch: true, ListShape: true);
}

/// <summary>
/// Request examples made from the served bundle (task names that exist: every input kind, one task
/// of each head kind, an out-of-scope utterance that falls back) and, as the 200 examples, the
/// answers the bundle gives them, computed once per loaded model. Kinds come from
/// <see cref="HeadKindRegistry"/>; no task name is written here.
/// </summary>
internal sealed class RequestExamplesOperationFilter(MultiTaskEngine engine, IOptions<HttpJsonOptions> json) : IOperationAsyncFilter
{
    public const string SingleText = "wake me up at 7 am tomorrow";
    public const string PairText = "A man is playing a guitar.";
    public const string PairSecond = "A person plays an instrument.";

    /// <summary>Off-domain utterances tried, in order, for the fallback example (the first that falls back is shown).</summary>
    public static readonly IReadOnlyList<string> OutOfScopeTexts = ["how do i get better at chess", "what is the boiling point of mercury", "tell me a joke about penguins"];

    // Per loaded model and operation shape; built once (a few inferences), not cancelled with the first caller.
    private readonly ConcurrentDictionary<(string Model, RequestExamples Kind), Lazy<Task<IReadOnlyList<Example>>>> _cache = new();

    /// <summary>A named request and the answer (in the operation's shape) the bundle gave it.</summary>
    internal sealed record Example(string Name, JsonObject Request, JsonNode Answer);

    public async Task ApplyAsync(OpenApiOperation operation, OperationFilterContext context, CancellationToken cancellationToken)
    {
        RequestExamples? kind = context.ApiDescription.ActionDescriptor.EndpointMetadata.OfType<RequestExamples>().FirstOrDefault();
        if (kind is null || engine.Current is not { } bundle)
        {
            return;
        }

        IReadOnlyList<Example> examples = await ExamplesAsync(bundle, kind, cancellationToken);
        if (operation.RequestBody?.Content?.TryGetValue("application/json", out IOpenApiMediaType? request) == true && request is OpenApiMediaType body)
        {
            body.Examples = examples.ToDictionary(e => e.Name, e => (IOpenApiExample)new OpenApiExample { Summary = e.Name, Value = e.Request.DeepClone() });
        }

        if (operation.Responses?.TryGetValue("200", out IOpenApiResponse? ok) == true
            && ok.Content?.TryGetValue("application/json", out IOpenApiMediaType? answer) == true && answer is OpenApiMediaType answers)
        {
            answers.Examples = examples.ToDictionary(e => e.Name, e => (IOpenApiExample)new OpenApiExample { Summary = e.Name, Value = e.Answer.DeepClone() });
        }
    }

    internal Task<IReadOnlyList<Example>> ExamplesAsync(BundleSnapshot bundle, RequestExamples kind, CancellationToken cancellationToken) =>
        _cache.GetOrAdd((bundle.ModelId, kind), key => new(() => BuildAsync(bundle.Tasks, key.Kind, CancellationToken.None)))
            .Value.WaitAsync(cancellationToken);

    private async Task<IReadOnlyList<Example>> BuildAsync(IReadOnlyList<TaskDefinition> tasks, RequestExamples kind, CancellationToken cancellationToken)
    {
        var examples = new List<Example>();
        foreach ((string name, ClassifyInput[] inputs, string[]? chosen) in kind.Batch ? BatchRequests(tasks) : SingleRequests(tasks))
        {
            RequestPredictions result = await engine.ClassifyAsync(inputs, chosen, cancellationToken);
            examples.Add(new Example(name, Request(kind, inputs, chosen), Answer(kind, result)));
        }

        if (!kind.Batch && await OutOfScopeAsync(tasks, kind, cancellationToken) is { } fallback)
        {
            examples.Add(fallback);
        }

        return examples;
    }

    /// <summary>Every input kind the bundle has, then one task of each head kind.</summary>
    private static IEnumerable<(string, ClassifyInput[], string[]?)> SingleRequests(IReadOnlyList<TaskDefinition> tasks)
    {
        if (tasks.Any(t => t.Input == TaskInputKind.Single))
        {
            yield return ("one sentence: every single-sentence task", [new ClassifyInput(SingleText)], null);
        }

        if (tasks.Any(t => t.Input == TaskInputKind.Pair))
        {
            yield return ("sentence pair: every pair task", [new ClassifyInput(PairText, PairSecond)], null);
        }

        foreach (HeadKind headKind in HeadKindRegistry.Kinds)
        {
            if (tasks.OrderBy(t => t.Input).FirstOrDefault(t => t.Kind == headKind) is { } task)
            {
                yield return ($"{headKind.Name}: task {task.Name}", [InputFor(task)], [task.Name]);
            }
        }
    }

    private static IEnumerable<(string, ClassifyInput[], string[]?)> BatchRequests(IReadOnlyList<TaskDefinition> tasks)
    {
        if (tasks.FirstOrDefault(t => t.Input == TaskInputKind.Single) is { } single)
        {
            yield return ($"two sentences, task {single.Name}", [new ClassifyInput(SingleText), new ClassifyInput("play the new album by the beatles")], [single.Name]);
        }

        if (tasks.FirstOrDefault(t => t.Input == TaskInputKind.Pair) is { } pair)
        {
            yield return ($"a pair, task {pair.Name}", [new ClassifyInput(PairText, PairSecond)], [pair.Name]);
        }
    }

    /// <summary>The first task with a fallback and the first off-domain utterance it falls back on; null when none does.</summary>
    private async Task<Example?> OutOfScopeAsync(IReadOnlyList<TaskDefinition> tasks, RequestExamples kind, CancellationToken cancellationToken)
    {
        if (tasks.FirstOrDefault(t => t.Fallback is not null && t.Input == TaskInputKind.Single) is not { } task)
        {
            return null;
        }

        foreach (string text in OutOfScopeTexts)
        {
            ClassifyInput[] inputs = [new ClassifyInput(text)];
            RequestPredictions result = await engine.ClassifyAsync(inputs, [task.Name], cancellationToken);
            JsonNode? answer = JsonSerializer.SerializeToNode(ContractMapper.ToResults(result.Results[0], null, json.Value.SerializerOptions), json.Value.SerializerOptions);
            if (answer?[task.Name]?["fallback"] is not null)
            {
                return new Example($"out of scope: task {task.Name} answers its fallback label '{task.Fallback!.Label}'",
                    Request(kind, inputs, [task.Name]), Answer(kind, result));
            }
        }

        return null;
    }

    private static ClassifyInput InputFor(TaskDefinition task) =>
        task.Input == TaskInputKind.Pair ? new ClassifyInput(PairText, PairSecond) : new ClassifyInput(SingleText);

    private static JsonObject Request(RequestExamples kind, ClassifyInput[] inputs, string[]? tasks)
    {
        JsonObject request = kind.Batch ? new JsonObject { ["inputs"] = new JsonArray([.. inputs.Select(Input)]) } : Input(inputs[0]);
        if (tasks is not null)
        {
            request["tasks"] = new JsonArray([.. tasks.Select(t => (JsonNode)t)]);
        }

        return request;
    }

    private static JsonObject Input(ClassifyInput input)
    {
        var node = new JsonObject { ["text"] = input.Text };
        if (input.TextPair is not null)
        {
            node["textPair"] = input.TextPair;
        }

        return node;
    }

    private JsonNode Answer(RequestExamples kind, RequestPredictions result)
    {
        object response = (kind.Batch, kind.ListShape) switch
        {
            (false, false) => new ClassifyResponse(result.Model, ContractMapper.ToResults(result.Results[0], null, json.Value.SerializerOptions)),
            (false, true) => new ClassifyV2Response(result.Model, ContractMapper.ToAnswers(result.Results[0], null, json.Value.SerializerOptions)),
            (true, false) => new ClassifyBatchResponse(result.Model, [.. result.Results.Select(r => ContractMapper.ToResults(r, null, json.Value.SerializerOptions))]),
            (true, true) => new ClassifyBatchV2Response(result.Model, [.. result.Results.Select(r => new InputAnswers(ContractMapper.ToAnswers(r, null, json.Value.SerializerOptions)))]),
        };
        return JsonSerializer.SerializeToNode(response, response.GetType(), json.Value.SerializerOptions)!;
    }
}
