using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Api;

/// <summary>Issue #26: <c>Auth:ApiKeys</c> and <c>Cors:AllowedOrigins</c>, both off by default.</summary>
public sealed class AccessTests
{
    [Fact]
    public async Task With_api_keys_the_public_api_needs_one_and_health_and_swagger_stay_open()
    {
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Auth:ApiKeys:0"] = "key-one", ["Auth:ApiKeys:1"] = "key-two" });
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage without = await client.PostAsJsonAsync("/classify", new { text = "hi" });
        Assert.Equal(HttpStatusCode.Unauthorized, without.StatusCode);
        Assert.StartsWith("X-Api-Key:", (string?)(await without.Content.ReadFromJsonAsync<JsonObject>())!["detail"]);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/tasks")).StatusCode);

        client.DefaultRequestHeaders.Add("X-Api-Key", "key-two");
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/v2/classify", new { text = "hi" })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/tasks")).StatusCode);

        using HttpClient anonymous = factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await anonymous.GetAsync("/health/live")).StatusCode);
        JsonNode document = JsonNode.Parse(await anonymous.GetStringAsync("/swagger/v1/swagger.json"))!;
        Assert.Contains("ApiKey", document["paths"]!["/classify"]!["post"]!["security"]!.ToJsonString());
        Assert.NotNull(document["paths"]!["/classify"]!["post"]!["responses"]!["401"]);
        Assert.NotNull(document["components"]!["securitySchemes"]!["ApiKey"]);
    }

    [Fact]
    public async Task Without_api_keys_the_public_api_is_open_and_declares_no_key()
    {
        using var factory = new ApiFactory();
        using HttpClient client = factory.CreateClient();

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/classify", new { text = "hi" })).StatusCode);
        JsonNode document = JsonNode.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"))!;
        Assert.Equal("[]", document["paths"]!["/classify"]!["post"]!["security"]!.ToJsonString());
        Assert.Null(document["components"]!["securitySchemes"]?["ApiKey"]);
    }

    [Fact]
    public async Task A_configured_origin_gets_its_preflight_answered_and_others_get_no_cors_headers()
    {
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Cors:AllowedOrigins:0"] = "https://app.example" });
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage allowed = await client.SendAsync(Preflight("https://app.example"));
        Assert.Equal(HttpStatusCode.NoContent, allowed.StatusCode);
        Assert.Equal("https://app.example", allowed.Headers.GetValues("Access-Control-Allow-Origin").Single());

        using HttpResponseMessage other = await client.SendAsync(Preflight("https://evil.example"));
        Assert.False(other.Headers.Contains("Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Without_origins_a_preflight_is_refused_as_before()
    {
        using var factory = new ApiFactory();
        using HttpClient client = factory.CreateClient();

        using HttpResponseMessage response = await client.SendAsync(Preflight("https://app.example"));
        Assert.Equal(HttpStatusCode.MethodNotAllowed, response.StatusCode);
        Assert.False(response.Headers.Contains("Access-Control-Allow-Origin"));
    }

    private static HttpRequestMessage Preflight(string origin)
    {
        var request = new HttpRequestMessage(HttpMethod.Options, "/classify");
        request.Headers.Add("Origin", origin);
        request.Headers.Add("Access-Control-Request-Method", "POST");
        request.Headers.Add("Access-Control-Request-Headers", "content-type");
        return request;
    }
}
