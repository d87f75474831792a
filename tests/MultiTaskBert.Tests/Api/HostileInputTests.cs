using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Api;

/// <summary>
/// The reproducers of issue #19 on the classify endpoints: an unknown charset was a 500, keys in
/// another case and duplicate keys were accepted silently, and <c>traceId</c> was the W3C trace
/// id rather than the request id.
/// </summary>
public sealed class HostileInputTests(LimitedApiFactory factory) : IClassFixture<LimitedApiFactory>
{
    private readonly HttpClient _client = factory.CreateClient();

    [Theory]
    [InlineData("/classify", "{\"text\":\"hi\"}", "bogus")]
    [InlineData("/classify/batch", "{\"inputs\":[{\"text\":\"hi\"}]}", "bogus")]
    [InlineData("/classify", "{\"text\":\"hi\"}", "utf-16")]
    [InlineData("/classify", "{\"text\":\"hi\"}", "\"\"")]
    [InlineData("/classify", "{\"text\":\"hi\"}", "\"utf-8\"")]
    public async Task An_unsupported_charset_is_a_415(string path, string body, string charset)
    {
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        content.Headers.TryAddWithoutValidation("Content-Type", $"application/json; charset={charset}");

        HttpResponseMessage response = await _client.PostAsync(path, content);

        await AssertProblem(response, HttpStatusCode.UnsupportedMediaType, "Content-Type", "UTF-8");
    }

    [Theory]
    [InlineData("utf-8")]
    [InlineData("UTF-8")]
    public async Task Utf8_charsets_are_accepted(string charset)
    {
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes("{\"text\":\"hi\"}"));
        content.Headers.TryAddWithoutValidation("Content-Type", $"application/json; charset={charset}");

        HttpResponseMessage response = await _client.PostAsync("/classify", content);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Theory]
    [InlineData("/classify", "{\"text\":\"a\",\"text\":\"b\"}", "text")]
    [InlineData("/classify/batch", "{\"inputs\":[{\"text\":\"a\",\"text\":\"b\"}]}", "inputs[0].text")]
    [InlineData("/classify", "{\"TEXT\":\"x\"}", "TEXT")]
    [InlineData("/classify", "{\"text\":\"x\",\"Tasks\":[\"sst2\"]}", "Tasks")]
    public async Task Duplicate_and_differently_cased_keys_are_400s(string path, string body, string field)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");

        HttpResponseMessage response = await _client.PostAsync(path, content);

        await AssertProblem(response, HttpStatusCode.BadRequest, field, "");
    }

    [Fact]
    public async Task The_problem_trace_id_is_the_callers_request_id()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/classify") { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        request.Headers.Add("X-Request-Id", "caller-id-42");

        HttpResponseMessage response = await _client.SendAsync(request);

        JsonElement problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("caller-id-42", problem.GetProperty("traceId").GetString());
    }

    [Fact]
    public async Task The_problem_trace_id_is_the_assigned_request_id_without_one()
    {
        HttpResponseMessage response = await _client.PostAsync("/classify", new StringContent("{}", Encoding.UTF8, "application/json"));

        JsonElement problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(response.Headers.GetValues("X-Request-Id").Single(), problem.GetProperty("traceId").GetString());
    }

    private static async Task AssertProblem(HttpResponseMessage response, HttpStatusCode status, string field, string message)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        string detail = JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString()!;
        Assert.StartsWith(field + ": ", detail);
        Assert.Contains(message, detail);
    }
}
