using System.Text.Json.Serialization;

namespace MultiTaskBert.Api.Contracts;

// Wire records of the two embedding APIs, named as their own APIs name them (snake_case).

/// <summary>OpenAI's <c>POST /v1/embeddings</c> request (documentation only: the endpoint reads the body itself, to answer OpenAI's error shape).</summary>
/// <param name="Input">A string or an array of strings.</param>
/// <param name="Model">The embedding task's name (<c>GET /tasks</c>) or the checkpoint's name, e.g. <c>all-minilm-l6-v2</c>.</param>
/// <param name="EncodingFormat"><c>float</c> (default) or <c>base64</c> (float32 little-endian).</param>
/// <param name="Dimensions">Refused unless it is the embedding's own length.</param>
/// <param name="User">Ignored.</param>
public sealed record OpenAiEmbeddingRequest(
    object Input,
    string Model,
    [property: JsonPropertyName("encoding_format")] string? EncodingFormat,
    int? Dimensions,
    string? User);

/// <summary>OpenAI's embeddings answer.</summary>
public sealed record OpenAiEmbeddingResponse(
    [property: JsonPropertyName("object")] string ObjectType,
    IReadOnlyList<OpenAiEmbedding> Data,
    string Model,
    OpenAiUsage Usage);

/// <summary>One input's embedding: floats, or a base64 string of float32 little-endian values.</summary>
public sealed record OpenAiEmbedding(
    [property: JsonPropertyName("object")] string ObjectType,
    int Index,
    object Embedding);

public sealed record OpenAiUsage(
    [property: JsonPropertyName("prompt_tokens")] int PromptTokens,
    [property: JsonPropertyName("total_tokens")] int TotalTokens);

/// <summary>OpenAI's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
public sealed record OpenAiErrorResponse(OpenAiError Error);

public sealed record OpenAiError(
    string Message,
    string Type,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Code);

/// <summary>text-embeddings-inference's <c>POST /embed</c> request (documentation only, as above).</summary>
/// <param name="Inputs">A string or an array of strings.</param>
/// <param name="Normalize">Must be true (the default): the head L2-normalises.</param>
/// <param name="Truncate">False (the default): an input longer than the bundle's maximum sequence length is refused; true: cut to it.</param>
public sealed record TeiEmbedRequest(object Inputs, bool? Normalize, bool? Truncate);

/// <summary>text-embeddings-inference's error body: <c>{"error", "error_type"}</c>.</summary>
public sealed record TeiErrorResponse(
    string Error,
    [property: JsonPropertyName("error_type")] string ErrorType);
