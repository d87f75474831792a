using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Api;

[Collection(ApiCollection.Name)]
public sealed class ServiceApiTests(ApiFactory factory)
{
    private readonly HttpClient _client = factory.CreateClient();

    [Fact]
    public async Task Tasks_lists_every_task_with_labels_and_metrics()
    {
        JsonElement json = JsonDocument.Parse(await _client.GetStringAsync("/tasks")).RootElement;

        JsonElement[] tasks = [.. json.GetProperty("tasks").EnumerateArray()];
        Assert.Equal(TestBundle.Manifest.Tasks.Select(t => t.Name), tasks.Select(t => t.GetProperty("name").GetString()));
        foreach ((var manifest, JsonElement listed) in TestBundle.Manifest.Tasks.Zip(tasks))
        {
            Assert.Equal(manifest.Output.Kind, listed.GetProperty("kind").GetString());
            Assert.Equal(manifest.Input, listed.GetProperty("input").GetString());
            Assert.Equal(manifest.Description, listed.GetProperty("description").GetString());
            Assert.Equal(manifest.Output.Labels ?? manifest.Output.Tags ?? [],
                listed.GetProperty("labels").EnumerateArray().Select(l => l.GetString()!));
            if (manifest.Metrics is not null)
            {
                Assert.Equal(JsonValueKind.Object, listed.GetProperty("metrics").ValueKind);
            }
        }
    }

    [Fact]
    public async Task Liveness_and_readiness_are_healthy_after_start_up()
    {
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/health/ready")).StatusCode);
    }

    [Fact]
    public async Task Swagger_documents_the_endpoints_with_examples()
    {
        JsonObject paths = JsonNode.Parse(await _client.GetStringAsync("/swagger/v1/swagger.json"))!["paths"]!.AsObject();

        Assert.True(paths.ContainsKey("/tasks"));
        foreach (string path in new[] { "/classify", "/classify/batch" })
        {
            JsonObject examples = paths[path]!["post"]!["requestBody"]!["content"]!["application/json"]!["examples"]!.AsObject();
            Assert.NotEmpty(examples);
            // Each example is a request body: one text, or inputs each with a text.
            Assert.All(examples, e =>
            {
                JsonNode value = e.Value!["value"]!;
                JsonNode[] texts = path == "/classify" ? [value["text"]!] : [.. value["inputs"]!.AsArray().Select(i => i!["text"]!)];
                Assert.All(texts, t => Assert.False(string.IsNullOrWhiteSpace(t.GetValue<string>()), $"{path} example {e.Key}"));
            });
        }

        Assert.Equal(HttpStatusCode.OK, (await _client.GetAsync("/swagger/index.html")).StatusCode);
    }
}
