using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Admin;

/// <summary>
/// Issue #27: a task defined by example utterances through <c>POST /admin/tasks</c>: embedded by the
/// bundle's embedding task, its centroids stored in the bundle under their SHA-256, answered like a
/// classification, served the same after a restart; bad entries are refused naming the field.
/// </summary>
public sealed class ExamplesTaskTests
{
    private static readonly string[] Task = ["intents"];

    private static JsonObject Entry(JsonObject examples) => new()
    {
        ["name"] = "intents",
        ["output"] = new JsonObject { ["kind"] = "examples", ["examples"] = examples },
    };

    private static JsonObject Examples() => new()
    {
        ["greet"] = new JsonArray("hello there", "good morning to you", "hi, how are you"),
        ["weather"] = new JsonArray("will it rain tomorrow"),
        ["music"] = new JsonArray("play some jazz music", "put on the new album"),
    };

    private static async Task<JsonElement> ClassifyAsync(HttpClient client, string text)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync("/classify", new { text, tasks = Task });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("results").GetProperty("intents");
    }

    [Fact]
    public async Task A_task_from_examples_answers_like_a_classification_and_survives_a_restart()
    {
        using var host = new AdminHost();
        using HttpResponseMessage added = await host.Admin.PostAsJsonAsync("/admin/tasks", Entry(Examples()));
        Assert.Equal(HttpStatusCode.OK, added.StatusCode);

        // An example that is its label's only one has cosine 1 with its centroid: always that label.
        JsonElement answer = await ClassifyAsync(host.Client, "will it rain tomorrow");
        Assert.Equal("weather", answer.GetProperty("label").GetString());
        Assert.Equal(["greet", "weather", "music"], answer.GetProperty("scores").EnumerateObject().Select(p => p.Name));
        Assert.Equal(1.0, answer.GetProperty("scores").EnumerateObject().Sum(p => p.Value.GetDouble()), 6);
        Assert.Equal(answer.GetProperty("scores").GetProperty("weather").GetDouble(), answer.GetProperty("score").GetDouble());

        JsonObject entry = (JsonObject)host.Bundle.ReadNewestManifest()["tasks"]!.AsArray().First(t => (string?)t!["name"] == "intents")!;
        JsonObject centroids = entry["output"]!["centroids"]!.AsObject();
        string file = (string)centroids["file"]!;
        Assert.Equal($"examples/{(string)centroids["sha256"]!}.f32", file);
        Assert.Equal((string)centroids["sha256"]!, host.Bundle.Sha256Of(file));
        Assert.Null(entry["output"]!["examples"]);
        Assert.Equal("out_of_scope", (string?)entry["output"]!["fallback"]!["label"]);
        string embeddingHead = (string)host.Entry("embedding")["head"]!["file"]!;
        Assert.Equal(embeddingHead, (string?)entry["head"]!["file"]);
        Assert.False(entry["head"]!.AsObject().ContainsKey("float")); // absent, not null: the toolkit reads the manifest too
        Assert.Equal(1, (int)entry["version"]!);

        // Re-posting examples without a version replaces the task with the next version.
        using HttpResponseMessage replaced = await host.Admin.PostAsJsonAsync("/admin/tasks", Entry(Examples()));
        Assert.Equal(HttpStatusCode.OK, replaced.StatusCode);
        Assert.Equal(2, await host.VersionOfAsync("intents"));

        using var restarted = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Model:BundlePath"] = host.Bundle.Directory });
        JsonElement again = await ClassifyAsync(restarted.CreateClient(), "will it rain tomorrow");
        Assert.Equal(answer.GetProperty("scores").ToString(), again.GetProperty("scores").ToString());
    }

    [Fact]
    public async Task Below_the_threshold_the_fallback_label_is_answered_with_the_nearest_label_and_cosine()
    {
        using var host = new AdminHost();
        JsonObject entry = Entry(Examples());
        entry["output"]!["fallback"] = new JsonObject { ["label"] = "none", ["threshold"] = 1.0 };
        using HttpResponseMessage added = await host.Admin.PostAsJsonAsync("/admin/tasks", entry);
        Assert.Equal(HttpStatusCode.OK, added.StatusCode);

        JsonElement answer = await ClassifyAsync(host.Client, "play some jazz");

        Assert.Equal("none", answer.GetProperty("label").GetString());
        JsonElement fallback = answer.GetProperty("fallback");
        Assert.Equal("cosine", fallback.GetProperty("rule").GetString());
        Assert.True(fallback.GetProperty("value").GetDouble() < 1.0);
        Assert.Equal(1.0, fallback.GetProperty("threshold").GetDouble());

        // A request's own threshold (a cosine) overrides the task's; outside [-1, 1] it is refused naming the field.
        using HttpResponseMessage lower = await host.Client.PostAsJsonAsync("/classify", new { text = "play some jazz", tasks = Task, fallbackThresholds = new { intents = -1.0 } });
        JsonElement kept = JsonDocument.Parse(await lower.Content.ReadAsStringAsync()).RootElement.GetProperty("results").GetProperty("intents");
        Assert.False(kept.TryGetProperty("fallback", out _));
        using HttpResponseMessage refused = await host.Client.PostAsJsonAsync("/classify", new { text = "x", tasks = Task, fallbackThresholds = new { intents = 2.0 } });
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("fallbackThresholds.intents", await refused.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("weather", "[]", "output.examples.weather")]
    [InlineData("weather", "[\"\"]", "output.examples.weather[0]")]
    [InlineData("weather", "[3]", "output.examples.weather[0]")]
    [InlineData("weather", "\"will it rain\"", "output.examples.weather")]
    public async Task A_bad_examples_entry_is_refused_naming_the_field(string label, string value, string field)
    {
        using var host = new AdminHost();
        JsonObject examples = Examples();
        examples[label] = JsonNode.Parse(value);
        int index = host.Bundle.ReadManifest()["tasks"]!.AsArray().Count;

        using HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/tasks", Entry(examples));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains($"tasks[{index}].{field}", await response.Content.ReadAsStringAsync());
        Assert.Null(await host.VersionOfAsync("intents"));
    }

    [Fact]
    public async Task One_label_or_too_many_examples_are_refused_with_the_limit()
    {
        using var host = new AdminHost();
        using HttpResponseMessage one = await host.Admin.PostAsJsonAsync("/admin/tasks", Entry(new JsonObject { ["a"] = new JsonArray("x") }));
        JsonObject many = Examples();
        many["greet"] = new JsonArray([.. Enumerable.Range(0, 257).Select(i => JsonValue.Create($"hello {i}"))]);
        using HttpResponseMessage tooMany = await host.Admin.PostAsJsonAsync("/admin/tasks", Entry(many));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, one.StatusCode);
        Assert.Contains("at least 2 labels", await one.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.UnprocessableEntity, tooMany.StatusCode);
        Assert.Contains("at most 256 examples per label", await tooMany.Content.ReadAsStringAsync());
    }
}
