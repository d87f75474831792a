using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Api;

/// <summary>An API host with small limits, so over-limit requests stay small.</summary>
public sealed class LimitedApiFactory : ApiFactory
{
    public const int MaxTextChars = 40;
    public const int MaxBatchInputs = 3;
    public const int MaxTasksPerRequest = 2;
    public const int MaxRequestBodyBytes = 2048;

    protected override IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>
    {
        ["Limits:MaxTextChars"] = MaxTextChars.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Limits:MaxBatchInputs"] = MaxBatchInputs.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Limits:MaxTasksPerRequest"] = MaxTasksPerRequest.ToString(System.Globalization.CultureInfo.InvariantCulture),
        ["Limits:MaxRequestBodyBytes"] = MaxRequestBodyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };
}

/// <summary>Every kind of bad input gets a 4xx RFC 7807 problem that names the field; never a 500.</summary>
public sealed class BadInputTests(LimitedApiFactory factory) : IClassFixture<LimitedApiFactory>
{
    private readonly HttpClient _client = factory.CreateClient();

    private static string Single => TestBundle.SingleClassificationTask.Name;

    private static string Pair => TestBundle.PairTask.Name;

    private static string LongText => new('a', LimitedApiFactory.MaxTextChars + 1);

    public static TheoryData<string, string, string> ClassifyBodies => new()
    {
        // body, field expected in the problem, a fragment of its message
        { "{\"text\": ", "text", "" },
        { "not json", "(body)", "" },
        { "{\"text\": 5}", "text", "" },
        { "{\"text\": \"hi\", \"tasks\": \"" + Single + "\"}", "tasks", "" },
        { "{\"text\": \"hi\", \"tasks\": [1]}", "tasks[0]", "" },
        { "{\"text\": \"hi\", \"textPair\": {}}", "textPair", "" },
        { "{\"txt\": \"hi\"}", "txt", "" },
        { "{}", "text", "required" },
        { "{\"text\": null}", "text", "required" },
        { "{\"text\": \"\"}", "text", "empty" },
        { "{\"text\": \"   \"}", "text", "empty" },
        { "{\"text\": \"" + LongText + "\"}", "text", $"at most {LimitedApiFactory.MaxTextChars} characters" },
        { "{\"text\": \"hi\", \"textPair\": \"" + LongText + "\"}", "textPair", $"at most {LimitedApiFactory.MaxTextChars} characters" },
        { "{\"text\": \"hi\", \"textPair\": \"\"}", "textPair", "empty" },
        { "{\"text\": \"hi\", \"tasks\": []}", "tasks", "at least one" },
        { "{\"text\": \"hi\", \"tasks\": [\"a\", \"b\", \"c\"]}", "tasks", $"at most {LimitedApiFactory.MaxTasksPerRequest} entries" },
        { "{\"text\": \"hi\", \"tasks\": [\"no-such-task\"]}", "tasks[0]", "unknown task 'no-such-task'" },
        { "{\"text\": \"hi\", \"tasks\": [\"" + Single + "\", \"" + Single + "\"]}", "tasks[1]", "twice" },
        { "{\"text\": \"hi\", \"tasks\": [\"" + Pair + "\"]}", "textPair", "needs textPair" },
    };

    public static TheoryData<string, string, string> BatchBodies => new()
    {
        { "{\"inputs\": [{\"text\": \"hi\"}, {\"text\": true}]}", "inputs[1].text", "" },
        { "{\"inputs\": {\"text\": \"hi\"}}", "inputs", "" },
        { "{\"inputs\": [{\"text\": \"hi\", \"extra\": 1}]}", "inputs[0].extra", "" },
        { "{}", "inputs", "at least one" },
        { "{\"inputs\": []}", "inputs", "at least one" },
        { "{\"inputs\": [null]}", "inputs[0]", "object" },
        { "{\"inputs\": [{\"text\": \"a\"}, {\"text\": \"b\"}, {\"text\": \"c\"}, {\"text\": \"d\"}]}", "inputs", $"at most {LimitedApiFactory.MaxBatchInputs} entries" },
        { "{\"inputs\": [{\"text\": \"a\"}, {\"text\": \"b\"}, {\"text\": \"" + LongText + "\"}]}", "inputs[2].text", $"inputs[2].text: must be at most {LimitedApiFactory.MaxTextChars} characters" },
        { "{\"inputs\": [{\"text\": \"a\"}, {\"textPair\": \"b\"}]}", "inputs[1].text", "required" },
        { "{\"inputs\": [{\"text\": \"a\", \"textPair\": \"b\"}, {\"text\": \"c\"}], \"tasks\": [\"" + Pair + "\"]}", "inputs[1].textPair", "needs textPair" },
        { "{\"inputs\": [{\"text\": \"a\"}], \"tasks\": [\"" + Single + "\", \"nope\"]}", "tasks[1]", "unknown task" },
    };

    [Theory]
    [MemberData(nameof(ClassifyBodies))]
    public async Task Classify_rejects(string body, string field, string message) =>
        await AssertProblem(await Post("/classify", body), HttpStatusCode.BadRequest, field, message);

    [Theory]
    [MemberData(nameof(BatchBodies))]
    public async Task Batch_rejects(string body, string field, string message) =>
        await AssertProblem(await Post("/classify/batch", body), HttpStatusCode.BadRequest, field, message);

    [Fact]
    public async Task Empty_body_is_a_bad_request()
    {
        using HttpResponseMessage response = await Post("/classify", "");
        await AssertProblem(response, HttpStatusCode.BadRequest, "(body)", "");
    }

    [Fact]
    public async Task Json_null_body_is_a_bad_request()
    {
        using HttpResponseMessage response = await Post("/classify", "null");
        await AssertProblem(response, HttpStatusCode.BadRequest, "(body)", "");
    }

    [Fact]
    public async Task Body_over_the_limit_is_413()
    {
        string body = "{\"text\": \"" + new string('a', LimitedApiFactory.MaxRequestBodyBytes) + "\"}";
        using HttpResponseMessage response = await Post("/classify", body);
        await AssertProblem(response, HttpStatusCode.RequestEntityTooLarge, "(body)", $"at most {LimitedApiFactory.MaxRequestBodyBytes} bytes");
    }

    [Fact]
    public async Task Non_json_content_type_is_415()
    {
        using var content = new StringContent("text=hi", Encoding.UTF8, "application/x-www-form-urlencoded");
        using HttpResponseMessage response = await _client.PostAsync("/classify", content);
        await AssertProblem(response, HttpStatusCode.UnsupportedMediaType, "(body)", "");
    }

    [Fact]
    public async Task Unknown_route_is_a_404_problem()
    {
        using HttpResponseMessage response = await _client.GetAsync("/nope");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    private async Task<HttpResponseMessage> Post(string path, string body)
    {
        var content = new StringContent(body, Encoding.UTF8);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        return await _client.PostAsync(path, content);
    }

    /// <summary>Status, problem+json, the field named in <c>detail</c> (and in <c>errors</c> for 400s that carry them).</summary>
    private static async Task AssertProblem(HttpResponseMessage response, HttpStatusCode status, string field, string message)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);

        JsonElement problem = JsonDocument.Parse(text).RootElement;
        Assert.Equal((int)status, problem.GetProperty("status").GetInt32());
        string detail = problem.GetProperty("detail").GetString()!;
        Assert.StartsWith(field + ": ", detail);
        Assert.Contains(message, detail);
        if (problem.TryGetProperty("errors", out JsonElement errors))
        {
            Assert.True(errors.TryGetProperty(field, out _), $"errors has no '{field}': {errors}");
        }
    }
}
