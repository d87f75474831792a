using System.ClientModel;
using System.ClientModel.Primitives;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MultiTaskBert.Tests.Support;
using OpenAI;
using OpenAI.Embeddings;

namespace MultiTaskBert.Tests.Api;

/// <summary>
/// Issue #27: the embedding task behind OpenAI's <c>/v1/embeddings</c> (called with the official
/// OpenAI .NET client) and text-embeddings-inference's <c>/embed</c>, against the real host; bad
/// input gets each API's own 4xx error shape.
/// </summary>
[Collection(ApiCollection.Name)]
public sealed class EmbeddingApiTests(ApiFactory factory)
{
    private static string EmbeddingTask => TestBundle.Manifest.Tasks.First(t => t.Output.Kind == "embedding").Name;

    private static int Dimensions => TestBundle.Manifest.Tasks.First(t => t.Output.Kind == "embedding").Output.Dimensions!.Value;

    private readonly HttpClient _client = factory.CreateClient();

    private static StringContent Json(string body) => new(body, Encoding.UTF8, "application/json");

    /// <summary>The embedding as <c>/classify</c> answers it when the task is named.</summary>
    private async Task<float[]> ClassifyEmbeddingAsync(string text)
    {
        using HttpResponseMessage response = await _client.PostAsJsonAsync("/classify", new { text, tasks = new[] { EmbeddingTask } });
        response.EnsureSuccessStatusCode();
        JsonElement json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        return [.. json.GetProperty("results").GetProperty(EmbeddingTask).GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())];
    }

    [Fact]
    public async Task The_official_OpenAI_client_gets_the_same_unit_vectors_as_classify()
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = new Uri(_client.BaseAddress!, "/v1"),
            Transport = new HttpClientPipelineTransport(factory.CreateClient()),
        };
        var client = new EmbeddingClient(EmbeddingTask, new ApiKeyCredential("unused"), options);

        ClientResult<OpenAIEmbeddingCollection> result = await client.GenerateEmbeddingsAsync(["the movie was great", "book a table for two"]);

        Assert.Equal(2, result.Value.Count);
        Assert.True(result.Value.Usage.InputTokenCount > 4);
        for (int i = 0; i < 2; i++)
        {
            float[] vector = result.Value[i].ToFloats().ToArray();
            float[] expected = await ClassifyEmbeddingAsync(i == 0 ? "the movie was great" : "book a table for two");
            Assert.Equal(Dimensions, vector.Length);
            Assert.Equal(1.0, Math.Sqrt(vector.Sum(v => (double)v * v)), 4);
            Assert.All(vector.Zip(expected), p => Assert.Equal(p.Second, p.First, 5));
        }
    }

    [Fact]
    public async Task The_embedding_points_where_PyTorch_says_on_every_parity_text()
    {
        // parity.json's tolerance is sized for logits; an embedding's components are small, so compare directions.
        ParityCase[] cases = [.. ParityFile.Fixture.Cases.Where(c => c.TextPair is null && c.Outputs.ContainsKey(EmbeddingTask))];
        Assert.NotEmpty(cases);
        foreach (ParityCase c in cases)
        {
            float[] served = await ClassifyEmbeddingAsync(c.Text);
            float[] expected = c.Outputs[EmbeddingTask];
            double cosine = served.Zip(expected).Sum(p => (double)p.First * p.Second)
                            / Math.Sqrt(served.Sum(v => (double)v * v) * expected.Sum(v => (double)v * v));
            Assert.True(cosine > 0.999, $"'{c.Text}': cosine {cosine} to PyTorch's embedding");
        }
    }

    [Fact]
    public async Task Float_and_base64_answers_carry_the_same_values_and_the_token_usage()
    {
        using HttpResponseMessage floats = await _client.PostAsync("/v1/embeddings", Json($$"""{"input":"hello world","model":"{{EmbeddingTask}}"}"""));
        using HttpResponseMessage base64 = await _client.PostAsync("/v1/embeddings", Json($$"""{"input":["hello world"],"model":"{{EmbeddingTask}}","encoding_format":"base64"}"""));
        JsonElement f = JsonDocument.Parse(await floats.Content.ReadAsStringAsync()).RootElement;
        JsonElement b = JsonDocument.Parse(await base64.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(("list", "embedding", 0, EmbeddingTask), (f.GetProperty("object").GetString(), f.GetProperty("data")[0].GetProperty("object").GetString(),
            f.GetProperty("data")[0].GetProperty("index").GetInt32(), f.GetProperty("model").GetString()));
        Assert.Equal(4, f.GetProperty("usage").GetProperty("prompt_tokens").GetInt32()); // [CLS] hello world [SEP]
        Assert.Equal(4, f.GetProperty("usage").GetProperty("total_tokens").GetInt32());
        float[] fromFloats = [.. f.GetProperty("data")[0].GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())];
        byte[] bytes = Convert.FromBase64String(b.GetProperty("data")[0].GetProperty("embedding").GetString()!);
        float[] fromBase64 = [.. Enumerable.Range(0, bytes.Length / 4).Select(i => BitConverter.ToSingle(bytes, i * 4))];
        Assert.Equal(fromFloats, fromBase64);
    }

    [Fact]
    public async Task The_model_may_be_named_by_the_checkpoint()
    {
        string checkpoint = TestBundle.Manifest.Trunk.Pretrained.Name;
        using HttpResponseMessage response = await _client.PostAsync("/v1/embeddings", Json($$"""{"input":"hi","model":"some-org/{{checkpoint.ToUpperInvariant()}}"}"""));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("""{"model":"M"}""", 400, "input")]
    [InlineData("""{"input":[],"model":"M"}""", 400, "input")]
    [InlineData("""{"input":[""],"model":"M"}""", 400, "input[0]")]
    [InlineData("""{"input":[1,2,3],"model":"M"}""", 400, "input[0]")]
    [InlineData("""{"input":{"a":1},"model":"M"}""", 400, "input")]
    [InlineData("""{"input":"hi"}""", 400, "model")]
    [InlineData("""{"input":"hi","model":"gpt-4"}""", 404, "model")]
    [InlineData("""{"input":"hi","model":"M","dimensions":7}""", 400, "dimensions")]
    [InlineData("""{"input":"hi","model":"M","encoding_format":"hex"}""", 400, "encoding_format")]
    [InlineData("""{"input":"hi","model":""", 400, null)]
    [InlineData("""[1]""", 400, null)]
    public async Task Bad_input_to_the_OpenAI_API_is_its_error_shape(string body, int status, string? param)
    {
        using HttpResponseMessage response = await _client.PostAsync("/v1/embeddings", Json(body.Replace("\"M\"", $"\"{EmbeddingTask}\"", StringComparison.Ordinal)));
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(param, error.GetProperty("param").ValueKind == JsonValueKind.Null ? null : error.GetProperty("param").GetString());
        Assert.True(error.TryGetProperty("code", out _));
    }

    [Fact]
    public async Task More_inputs_than_the_limit_are_refused_naming_the_limit()
    {
        string inputs = string.Join(",", Enumerable.Repeat("\"x\"", 65));
        using HttpResponseMessage response = await _client.PostAsync("/v1/embeddings", Json($$"""{"input":[{{inputs}}],"model":"{{EmbeddingTask}}"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("Limits:MaxBatchInputs", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Tei_embed_answers_one_vector_per_input_equal_to_classify()
    {
        using HttpResponseMessage one = await _client.PostAsync("/embed", Json("""{"inputs":"the movie was great"}"""));
        using HttpResponseMessage two = await _client.PostAsync("/embed", Json("""{"inputs":["the movie was great","book a table"],"normalize":true,"truncate":false}"""));
        float[][] single = JsonSerializer.Deserialize<float[][]>(await one.Content.ReadAsStringAsync())!;
        float[][] pair = JsonSerializer.Deserialize<float[][]>(await two.Content.ReadAsStringAsync())!;
        float[] expected = await ClassifyEmbeddingAsync("the movie was great");

        Assert.Single(single);
        Assert.Equal(2, pair.Length);
        Assert.All(single[0].Zip(expected), p => Assert.Equal(p.Second, p.First, 5));
        Assert.All(single[0].Zip(pair[0]), p => Assert.Equal(p.First, p.Second, 5)); // padded in a batch: float rounding only
    }

    [Theory]
    [InlineData("""{"inputs":[]}""", 400, "empty")]
    [InlineData("""{"inputs":"  "}""", 400, "empty")]
    [InlineData("""{"inputs":"hi","normalize":false}""", 413, "validation")]
    [InlineData("""{"inputs":[[101,102]]}""", 413, "validation")]
    [InlineData("""{"inputs":"hi","truncate":"yes"}""", 422, "validation")]
    [InlineData("""{"inputs":""", 422, "validation")]
    public async Task Bad_input_to_the_TEI_API_is_its_error_shape(string body, int status, string errorType)
    {
        using HttpResponseMessage response = await _client.PostAsync("/embed", Json(body));
        JsonElement json = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(errorType, json.GetProperty("error_type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(json.GetProperty("error").GetString()));
    }

    [Fact]
    public async Task Tei_refuses_an_input_past_the_maximum_length_unless_truncate_is_true()
    {
        string text = string.Join(' ', Enumerable.Repeat("word", TestBundle.Manifest.Tokenizer.MaxSequenceLength + 5));
        using HttpResponseMessage refused = await _client.PostAsync("/embed", Json($$"""{"inputs":["short","{{text}}"]}"""));
        using HttpResponseMessage cut = await _client.PostAsync("/embed", Json($$"""{"inputs":["short","{{text}}"],"truncate":true}"""));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, refused.StatusCode);
        Assert.Contains("inputs", await refused.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, cut.StatusCode);
    }

    /// <summary>Refusals the pipeline makes before the endpoint runs (body limit, content type), as each API's callers read them.</summary>
    public static TheoryData<string, string, int> PipelineRefusals => new()
    {
        { "/v1/embeddings", "content-length", 413 },
        { "/v1/embeddings", "chunked", 413 },
        { "/v1/embeddings", "text/plain", 415 },
        { "/v1/embeddings", "latin1", 415 },
        { "/embed", "content-length", 413 },
        { "/embed", "chunked", 413 },
        { "/embed", "text/plain", 415 },
        { "/embed", "latin1", 415 },
    };

    [Theory]
    [MemberData(nameof(PipelineRefusals))]
    public async Task Body_too_large_and_wrong_content_type_answer_in_the_APIs_own_shape(string path, string how, int status)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = PipelineRefused(how, path == "/embed" ? "inputs" : "input") };
        request.Headers.TransferEncodingChunked = how == "chunked";

        using HttpResponseMessage response = await _client.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        JsonElement json = JsonDocument.Parse(text).RootElement;

        Assert.True(status == (int)response.StatusCode, $"{(int)response.StatusCode}: {text}");
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString());
        if (path == "/embed")
        {
            Assert.Equal(["error", "error_type"], json.EnumerateObject().Select(p => p.Name));
            Assert.Equal("validation", json.GetProperty("error_type").GetString());
            Assert.Contains(status == 413 ? "Limits:MaxRequestBodyBytes" : "Content-Type", json.GetProperty("error").GetString());
        }
        else
        {
            JsonElement error = json.GetProperty("error");
            Assert.Equal(["message", "type", "param", "code"], error.EnumerateObject().Select(p => p.Name));
            Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
            Assert.Equal(status == 413 ? "request_too_large" : "unsupported_media_type", error.GetProperty("code").GetString());
            Assert.Contains(status == 413 ? "Limits:MaxRequestBodyBytes" : "Content-Type", error.GetProperty("message").GetString());
            Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);
        }
    }

    private static HttpContent PipelineRefused(string how, string field)
    {
        if (how is "content-length" or "chunked")
        {
            // One text within Limits:MaxTextChars cannot pass 1 MiB: pad the JSON with whitespace.
            byte[] body = Encoding.UTF8.GetBytes($"{{\"{field}\":\"hi\",\"model\":\"{EmbeddingTask}\"}}" + new string(' ', 1_100_000));
            var content = new StreamContent(new MemoryStream(body));
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            return content;
        }

        return how == "latin1"
            ? new StringContent($"{{\"{field}\":\"hi\"}}", Encoding.Latin1, "application/json")
            : new StringContent("hi", Encoding.UTF8, "text/plain");
    }

    [Theory]
    [InlineData("""{"input":"LONG","model":"M"}""", "input")]
    [InlineData("""{"input":["a","LONG"],"model":"M"}""", "input[1]")]
    [InlineData("""{"input":true,"model":"M"}""", "input")]
    [InlineData("""{"input":[null],"model":"M"}""", "input[0]")]
    [InlineData("""{"input":"hi","model":5}""", "model")]
    [InlineData("""{"input":"hi","model":"M","dimensions":"384"}""", "dimensions")]
    [InlineData("""{"input":"hi","model":"M","dimensions":1e99}""", "dimensions")]
    [InlineData("""{"input":"hi","model":"M","dimensions":-1}""", "dimensions")]
    [InlineData("""{"input":"hi","model":"M","encoding_format":5}""", "encoding_format")]
    public async Task Other_bad_input_to_the_OpenAI_API_is_a_400_in_its_shape(string body, string param)
    {
        string json = body.Replace("\"M\"", $"\"{EmbeddingTask}\"", StringComparison.Ordinal).Replace("LONG", new string('a', 2001), StringComparison.Ordinal);
        using HttpResponseMessage response = await _client.PostAsync("/v1/embeddings", Json(json));
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
    }

    [Theory]
    [InlineData("""{"inputs":"LONG"}""", 413, "validation", "Limits:MaxTextChars")]
    [InlineData("""{"inputs":MANY}""", 413, "validation", "Limits:MaxBatchInputs")]
    [InlineData("""{"inputs":5}""", 413, "validation", "inputs")]
    [InlineData("""{"inputs":[null]}""", 413, "validation", "inputs[0]")]
    [InlineData("""{"inputs":"hi","normalize":"no"}""", 422, "validation", "normalize")]
    [InlineData("""{}""", 400, "empty", "inputs")]
    public async Task Other_bad_input_to_the_TEI_API_is_a_4xx_in_its_shape(string body, int status, string errorType, string named)
    {
        string json = body.Replace("LONG", new string('a', 2001), StringComparison.Ordinal)
            .Replace("MANY", "[" + string.Join(",", Enumerable.Repeat("\"x\"", 65)) + "]", StringComparison.Ordinal);
        using HttpResponseMessage response = await _client.PostAsync("/embed", Json(json));
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;

        Assert.Equal(status, (int)response.StatusCode);
        Assert.Equal(errorType, error.GetProperty("error_type").GetString());
        Assert.Contains(named, error.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Classify_answers_the_embedding_only_when_it_is_named()
    {
        using HttpResponseMessage all = await _client.PostAsJsonAsync("/classify", new { text = "hello" });
        JsonElement results = JsonDocument.Parse(await all.Content.ReadAsStringAsync()).RootElement.GetProperty("results");
        float[] named = await ClassifyEmbeddingAsync("hello");

        Assert.False(results.TryGetProperty(EmbeddingTask, out _));
        Assert.Equal(Dimensions, named.Length);
    }
}
