using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Api.Errors;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Endpoints;

/// <summary>
/// The bundle's embedding task behind two wire-compatible APIs: OpenAI's <c>POST /v1/embeddings</c>
/// and text-embeddings-inference's <c>POST /embed</c>. Both run through the micro-batcher like
/// <c>/classify</c>, and each answers bad input in its own API's error shape (a 4xx, never a 500):
/// the body is read here rather than bound, so that malformed JSON gets that shape too.
/// </summary>
internal static class EmbeddingEndpoints
{
    public static IEndpointRouteBuilder MapEmbeddingEndpoints(this IEndpointRouteBuilder routes)
    {
        routes.MapPost("/v1/embeddings", OpenAiAsync)
            .WithTags("Embeddings")
            .WithName("CreateEmbeddings")
            .WithSummary("OpenAI-compatible embeddings of a string or an array of strings (the bundle's embedding task).")
            .Accepts<OpenAiEmbeddingRequest>("application/json")
            .Produces<OpenAiEmbeddingResponse>()
            .Produces<OpenAiErrorResponse>(StatusCodes.Status400BadRequest)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status404NotFound)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status413PayloadTooLarge)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status415UnsupportedMediaType)
            .Produces<OpenAiErrorResponse>(StatusCodes.Status503ServiceUnavailable)
            .WithMetadata(new EmbeddingErrorShape(EmbeddingApi.OpenAi));
        routes.MapPost("/embed", TeiAsync)
            .WithTags("Embeddings")
            .WithName("Embed")
            .WithSummary("text-embeddings-inference-compatible embeddings: an array of vectors, in input order.")
            .Accepts<TeiEmbedRequest>("application/json")
            .Produces<float[][]>()
            .Produces<TeiErrorResponse>(StatusCodes.Status400BadRequest)
            .Produces<TeiErrorResponse>(StatusCodes.Status413PayloadTooLarge)
            .Produces<TeiErrorResponse>(StatusCodes.Status415UnsupportedMediaType)
            .Produces<TeiErrorResponse>(StatusCodes.Status422UnprocessableEntity)
            .Produces<TeiErrorResponse>(StatusCodes.Status429TooManyRequests)
            .Produces<TeiErrorResponse>(StatusCodes.Status503ServiceUnavailable)
            .WithMetadata(new EmbeddingErrorShape(EmbeddingApi.Tei));
        return routes;
    }

    internal static async Task<IResult> OpenAiAsync(HttpRequest http, MicroBatcher batcher, MultiTaskEngine engine, IOptions<LimitsOptions> limits, CancellationToken cancellationToken)
    {
        try
        {
            using JsonDocument body = await ReadBodyAsync(http, cancellationToken);
            JsonElement root = RequireObject(body);
            IReadOnlyList<string> inputs = ReadTexts(root, "input", limits.Value);
            TaskDefinition task = ResolveModel(engine, root);
            bool base64 = ReadEncodingFormat(root);
            CheckDimensions(root, task);
            IReadOnlyList<EmbeddingPrediction> embeddings = await EmbedAsync(batcher, task, inputs, cancellationToken);
            int tokens = embeddings.Sum(e => e.Tokens);
            OpenAiEmbedding[] data = [.. embeddings.Select((e, i) => new OpenAiEmbedding("embedding", i, base64 ? Base64(e.Vector) : e.Vector))];
            return TypedResults.Ok(new OpenAiEmbeddingResponse("list", data, task.Name, new OpenAiUsage(tokens, tokens)));
        }
        catch (EmbeddingRequestException ex)
        {
            return TypedResults.Json(EmbeddingErrorShapes.OpenAi(ex.Status, ex.Field, ex.Message, ex.Code), statusCode: ex.Status);
        }
    }

    internal static async Task<IResult> TeiAsync(HttpRequest http, MicroBatcher batcher, MultiTaskEngine engine, IOptions<LimitsOptions> limits, CancellationToken cancellationToken)
    {
        try
        {
            using JsonDocument body = await ReadBodyAsync(http, cancellationToken);
            JsonElement root = RequireObject(body);
            IReadOnlyList<string> inputs = ReadTexts(root, "inputs", limits.Value);
            if (ReadBool(root, "normalize") is false)
            {
                throw Validation("normalize", "normalize=false is not supported: this model's embedding head outputs L2-normalised vectors");
            }

            bool truncate = ReadBool(root, "truncate") ?? false;
            TaskDefinition task = ResolveModel(engine, root: null);
            IReadOnlyList<EmbeddingPrediction> embeddings = await EmbedAsync(batcher, task, inputs, cancellationToken);
            int longest = embeddings.Select((e, i) => (e, i)).FirstOrDefault(p => p.e.Truncated, (null!, -1)).Item2;
            if (!truncate && longest >= 0)
            {
                int max = engine.Current?.Bundle.Manifest.Tokenizer.MaxSequenceLength ?? 0;
                throw Validation($"inputs[{longest}]", $"Input validation error: `inputs` must have less than {max} tokens; set truncate=true to cut it");
            }

            return TypedResults.Ok(embeddings.Select(e => e.Vector).ToArray());
        }
        catch (EmbeddingRequestException ex)
        {
            (int status, TeiErrorResponse body) = EmbeddingErrorShapes.Tei(ex.Status, ex.Message, ex.Code);
            return TypedResults.Json(body, statusCode: status);
        }
    }

    private static async Task<JsonDocument> ReadBodyAsync(HttpRequest http, CancellationToken cancellationToken)
    {
        if (!http.HasJsonContentType())
        {
            throw new EmbeddingRequestException(StatusCodes.Status415UnsupportedMediaType, null,
                $"Content-Type must be application/json, not '{http.ContentType}'", EmbeddingErrorShapes.CodeOf(StatusCodes.Status415UnsupportedMediaType));
        }

        try
        {
            return await JsonDocument.ParseAsync(http.Body, new JsonDocumentOptions { MaxDepth = 16 }, cancellationToken);
        }
        catch (JsonException ex)
        {
            throw new EmbeddingRequestException(StatusCodes.Status400BadRequest, null, $"We could not parse the JSON body of your request: {ex.Message}", "invalid_json");
        }
    }

    private static JsonElement RequireObject(JsonDocument body) => body.RootElement.ValueKind == JsonValueKind.Object
        ? body.RootElement
        : throw new EmbeddingRequestException(StatusCodes.Status400BadRequest, null, "the body must be a JSON object", "invalid_json");

    /// <summary>A string or a non-empty array of strings, each non-empty and within the limits.</summary>
    private static List<string> ReadTexts(JsonElement root, string field, LimitsOptions limits)
    {
        if (!root.TryGetProperty(field, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            throw Invalid(field, $"'{field}' is required: a string or an array of strings", "empty");
        }

        List<JsonElement> items = value.ValueKind switch
        {
            JsonValueKind.String => [value],
            JsonValueKind.Array => [.. value.EnumerateArray()],
            _ => throw Invalid(field, $"'{field}' must be a string or an array of strings, not {value.ValueKind}"),
        };
        if (items.Count == 0)
        {
            throw Invalid(field, $"'{field}' cannot be empty", "empty");
        }

        if (items.Count > limits.MaxBatchInputs)
        {
            throw Invalid(field, $"'{field}' may hold at most {limits.MaxBatchInputs} texts (Limits:MaxBatchInputs), got {items.Count}");
        }

        var texts = new List<string>(items.Count);
        for (int i = 0; i < items.Count; i++)
        {
            string at = value.ValueKind == JsonValueKind.Array ? $"{field}[{i}]" : field;
            if (items[i].ValueKind != JsonValueKind.String)
            {
                throw Invalid(at, $"'{at}' must be a string (token arrays are not supported), not {items[i].ValueKind}");
            }

            string text = items[i].GetString()!;
            if (string.IsNullOrWhiteSpace(text))
            {
                throw Invalid(at, $"'{at}' must not be empty", "empty");
            }

            if (text.Length > limits.MaxTextChars)
            {
                throw Invalid(at, $"'{at}' must be at most {limits.MaxTextChars} characters (Limits:MaxTextChars), got {text.Length}");
            }

            texts.Add(text);
        }

        return texts;
    }

    /// <summary>
    /// The embedding task <c>model</c> names: the task's name or the checkpoint's (with or without
    /// an organisation prefix, any case); absent (TEI), the bundle's first embedding task.
    /// </summary>
    private static TaskDefinition ResolveModel(MultiTaskEngine engine, JsonElement? root)
    {
        BundleSnapshot bundle = engine.Current
            ?? throw new EmbeddingRequestException(StatusCodes.Status503ServiceUnavailable, null, "The model is still loading.", "unhealthy");
        TaskDefinition[] embeddings = [.. bundle.Tasks.Where(t => t.Kind == EmbeddingKind.Instance)];
        if (embeddings.Length == 0)
        {
            throw new EmbeddingRequestException(StatusCodes.Status404NotFound, "model", $"bundle {bundle.ModelId} has no embedding task", "model_not_found");
        }

        if (root is not { } body)
        {
            return embeddings[0];
        }

        if (!body.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(model.GetString()))
        {
            throw Invalid("model", "'model' is required: a string naming the embedding model");
        }

        string name = model.GetString()!;
        string checkpoint = bundle.Bundle.Manifest.Trunk.Pretrained.Name;
        string bare = name[(name.LastIndexOf('/') + 1)..];
        return embeddings.FirstOrDefault(t => string.Equals(t.Name, name, StringComparison.Ordinal))
            ?? (string.Equals(bare, checkpoint, StringComparison.OrdinalIgnoreCase) ? embeddings[0] : null)
            ?? throw new EmbeddingRequestException(StatusCodes.Status404NotFound, "model",
                $"The model '{name}' does not exist; embedding models here: {string.Join(", ", embeddings.Select(t => t.Name).Append(checkpoint))}", "model_not_found");
    }

    private static bool ReadEncodingFormat(JsonElement root)
    {
        if (!root.TryGetProperty("encoding_format", out JsonElement format) || format.ValueKind == JsonValueKind.Null)
        {
            return false;
        }

        return format.ValueKind == JsonValueKind.String ? format.GetString() switch
        {
            "float" => false,
            "base64" => true,
            _ => throw Invalid("encoding_format", $"'encoding_format' must be float or base64, not '{format.GetString()}'"),
        } : throw Invalid("encoding_format", "'encoding_format' must be the string float or base64");
    }

    /// <summary><c>dimensions</c> would ask for a shortened vector, which this model cannot give: only its own length passes.</summary>
    private static void CheckDimensions(JsonElement root, TaskDefinition task)
    {
        if (root.TryGetProperty("dimensions", out JsonElement dimensions) && dimensions.ValueKind != JsonValueKind.Null
            && !(dimensions.ValueKind == JsonValueKind.Number && dimensions.TryGetInt32(out int value) && value == task.Dimensions))
        {
            throw Invalid("dimensions", $"'dimensions' is not supported: model '{task.Name}' gives {task.Dimensions}-dimensional embeddings only; omit it");
        }
    }

    private static bool? ReadBool(JsonElement root, string field)
    {
        if (!root.TryGetProperty(field, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new EmbeddingRequestException(StatusCodes.Status422UnprocessableEntity, field, $"'{field}' must be a boolean", "invalid_json"),
        };
    }

    private static async Task<IReadOnlyList<EmbeddingPrediction>> EmbedAsync(MicroBatcher batcher, TaskDefinition task, IReadOnlyList<string> texts, CancellationToken cancellationToken)
    {
        try
        {
            RequestPredictions result = await batcher.ClassifyAsync([.. texts.Select(t => new ClassifyInput(t))], [task.Name], cancellationToken);
            return [.. result.Results.Select(r => (EmbeddingPrediction)r[task.Name])];
        }
        catch (QueueFullException ex)
        {
            throw new EmbeddingRequestException(StatusCodes.Status503ServiceUnavailable, null, ex.Message, "overloaded");
        }
        catch (EngineNotReadyException ex)
        {
            throw new EmbeddingRequestException(StatusCodes.Status503ServiceUnavailable, null, ex.Message, "unhealthy");
        }
        catch (InvalidClassifyRequestException ex)
        {
            throw Invalid(ex.Field.Replace("inputs", "input", StringComparison.Ordinal), ex.Message);
        }
    }

    /// <summary>float32 little-endian bytes in base64, as OpenAI's <c>encoding_format: base64</c>.</summary>
    private static string Base64(float[] vector) => BitConverter.IsLittleEndian
        ? Convert.ToBase64String(MemoryMarshal.AsBytes(vector.AsSpan()))
        : throw new PlatformNotSupportedException("base64 embeddings are written on little-endian machines only");

    private static EmbeddingRequestException Invalid(string field, string message, string? code = null) =>
        new(StatusCodes.Status400BadRequest, field, message, code);

    private static EmbeddingRequestException Validation(string field, string message) => new(StatusCodes.Status400BadRequest, field, message, "validation");

    /// <summary>Bad input or an unservable request, in terms both APIs translate into their own shapes.</summary>
    private sealed class EmbeddingRequestException(int status, string? field, string message, string? code) : Exception(message)
    {
        public int Status { get; } = status;
        public string? Field { get; } = field;
        public string? Code { get; } = code;
    }
}
