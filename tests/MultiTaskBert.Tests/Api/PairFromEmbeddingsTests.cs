using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Tests.Admin;

namespace MultiTaskBert.Tests.Api;

/// <summary>
/// Issue #27 item 4: the fixture's pair tasks computed from the two texts' embeddings (manifest
/// <c>output.source</c>, put in service by <c>POST /admin/reload</c> on a copy). Each answer is checked
/// against the embeddings the same service gives each text alone: stsb = clamp(w·cos + b), rte =
/// softmax([0, w·cos + b]).
/// </summary>
public sealed class PairFromEmbeddingsTests(PairFromEmbeddingsTests.Host host) : IClassFixture<PairFromEmbeddingsTests.Host>
{
    private const double StsbWeight = 4.0, StsbBias = 1.0, RteWeight = 3.0, RteBias = -1.0;

    // The embeddings of a pair's two texts run in one trunk pass padded with the other rows of the
    // request; the answers of each text alone agree to float32 rounding of the padded pass.
    private const double Tolerance = 1e-4;

    private static readonly (string Text, string Pair)[] Pairs =
    [
        ("A man is playing a guitar.", "A person plays an instrument."),
        ("the cat sat on the mat", "stocks fell sharply on tuesday"),
        ("Book a table for two at 8 pm", "Book a table for two at 8 pm"),
    ];

    /// <summary>An admin host on a fixture copy whose stsb and rte are computed from the embedding task's vectors.</summary>
    public sealed class Host : IAsyncLifetime
    {
        public AdminHost Admin { get; } = new();

        public async Task InitializeAsync()
        {
            Admin.Bundle.EditManifest(m =>
            {
                Source(m, "stsb", StsbWeight, StsbBias);
                JsonObject rte = Source(m, "rte", RteWeight, RteBias);
                // The toolkit moves the joint head's fallback and temperature under output.source.jointPass.
                rte["output"]!.AsObject().Remove("fallback");
                rte["output"]!.AsObject().Remove("temperature");
            });
            HttpResponseMessage reload = await Admin.Admin.PostAsync("/admin/reload", null);
            Assert.Equal(HttpStatusCode.OK, reload.StatusCode);
        }

        public Task DisposeAsync()
        {
            Admin.Dispose();
            return Task.CompletedTask;
        }
    }

    internal static JsonObject Source(JsonObject manifest, string task, double weight, double bias)
    {
        JsonObject entry = manifest["tasks"]!.AsArray().First(t => (string?)t!["name"] == task)!.AsObject();
        entry["output"]!.AsObject()["source"] = new JsonObject
        {
            ["way"] = "embeddings", ["embedding"] = "embedding", ["features"] = new JsonArray("cosine"),
            ["weights"] = new JsonArray(weight), ["bias"] = bias,
            ["dev"] = new JsonObject { ["embeddings"] = new JsonObject { ["score"] = 2.0 }, ["jointPass"] = new JsonObject { ["score"] = 1.0 } },
        };
        return entry;
    }

    [Fact]
    public async Task A_pair_task_from_embeddings_answers_the_mapping_of_the_cosine_of_each_texts_own_embedding()
    {
        foreach ((string text, string pair) in Pairs)
        {
            double cosine = Dot(await EmbedAsync(text), await EmbedAsync(pair));
            JsonElement results = await ClassifyAsync(new { text, textPair = pair, tasks = Named("stsb", "rte") });

            Assert.Equal(Math.Clamp(StsbWeight * cosine + StsbBias, 0, 5), results.GetProperty("stsb").GetProperty("value").GetDouble(), Tolerance);
            double second = 1 / (1 + Math.Exp(-(RteWeight * cosine + RteBias)));
            JsonElement rte = results.GetProperty("rte");
            Assert.Equal(second, rte.GetProperty("scores").GetProperty("not_entailment").GetDouble(), Tolerance);
            Assert.Equal(1 - second, rte.GetProperty("scores").GetProperty("entailment").GetDouble(), Tolerance);
            Assert.Equal(second > 0.5 ? "not_entailment" : "entailment", rte.GetProperty("label").GetString());
            Assert.False(rte.TryGetProperty("fallback", out _));
        }
    }

    [Fact]
    public async Task A_batch_and_the_default_selection_answer_what_each_pair_gets_alone_beside_other_tasks()
    {
        var inputs = Pairs.Select(p => new { text = p.Text, textPair = (string?)p.Pair }).Append(new { text = "play some jazz", textPair = (string?)null }).ToArray();
        using HttpResponseMessage response = await host.Admin.Client.PostAsJsonAsync("/classify/batch", new { inputs, tasks = Named("stsb", "snips") });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode); // the single text cannot feed the pair task

        using HttpResponseMessage batch = await host.Admin.Client.PostAsJsonAsync("/classify/batch", new { inputs = inputs[..^1] });
        JsonElement[] answers = [.. JsonDocument.Parse(await batch.Content.ReadAsStringAsync()).RootElement.GetProperty("results").EnumerateArray()];
        for (int i = 0; i < Pairs.Length; i++)
        {
            JsonElement alone = await ClassifyAsync(new { text = Pairs[i].Text, textPair = Pairs[i].Pair, tasks = Named("stsb", "snips", "embedding") });
            Assert.Equal(alone.GetProperty("stsb").GetProperty("value").GetDouble(), answers[i].GetProperty("stsb").GetProperty("value").GetDouble(), Tolerance);
            float[] embedding = [.. alone.GetProperty("embedding").GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())];
            Assert.Equal(1.0, Dot(embedding, await EmbedAsync(Pairs[i].Text)), Tolerance); // named beside a pair task, the text's own embedding
        }
    }

    [Fact]
    public async Task Without_textPair_it_is_a_400_naming_the_field_as_for_every_pair_task()
    {
        using HttpResponseMessage response = await host.Admin.Client.PostAsJsonAsync("/classify", new { text = "only one text", tasks = Named("stsb") });

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.StartsWith("textPair: ", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Tasks_says_how_each_pair_task_is_computed_and_v2_keeps_its_kind()
    {
        JsonElement stsb = (await host.Admin.TasksAsync()).EnumerateArray().First(t => t.GetProperty("name").GetString() == "stsb");
        JsonElement source = stsb.GetProperty("source");
        Assert.Equal("regression", stsb.GetProperty("kind").GetString());
        Assert.Equal("embeddings", source.GetProperty("way").GetString());
        Assert.Equal("embedding", source.GetProperty("embedding").GetString());
        Assert.Equal(StsbWeight, source.GetProperty("weights")[0].GetDouble());
        Assert.Equal(2.0, source.GetProperty("dev").GetProperty("embeddings").GetProperty("score").GetDouble());
        Assert.False((await host.Admin.TasksAsync()).EnumerateArray().First(t => t.GetProperty("name").GetString() == "snips").TryGetProperty("source", out _));

        using HttpResponseMessage v2 = await host.Admin.Client.PostAsJsonAsync("/v2/classify", new { text = Pairs[0].Text, textPair = Pairs[0].Pair, tasks = Named("rte", "stsb") });
        JsonElement[] results = [.. JsonDocument.Parse(await v2.Content.ReadAsStringAsync()).RootElement.GetProperty("results").EnumerateArray()];
        Assert.Equal(["rte:classification", "stsb:regression"], results.Select(r => $"{r.GetProperty("task").GetString()}:{r.GetProperty("kind").GetString()}"));
    }

    [Fact]
    public async Task Removing_the_embedding_task_a_pair_task_reads_is_a_409_and_both_serve_on()
    {
        using HttpResponseMessage response = await host.Admin.Admin.DeleteAsync("/admin/tasks/embedding");

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        string detail = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString()!;
        Assert.StartsWith("name: task 'embedding' cannot be removed: task '", detail);
        Assert.NotNull(await host.Admin.VersionOfAsync("embedding"));
        Assert.True((await ClassifyAsync(new { text = Pairs[0].Text, textPair = Pairs[0].Pair, tasks = Named("stsb") })).TryGetProperty("stsb", out _));
    }

    private async Task<float[]> EmbedAsync(string text)
    {
        JsonElement results = await ClassifyAsync(new { text, tasks = Named("embedding") });
        return [.. results.GetProperty("embedding").GetProperty("embedding").EnumerateArray().Select(v => v.GetSingle())];
    }

    private async Task<JsonElement> ClassifyAsync(object request)
    {
        using HttpResponseMessage response = await host.Admin.Client.PostAsJsonAsync("/classify", request);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonDocument.Parse(body).RootElement.GetProperty("results").Clone();
    }

    private static string[] Named(params string[] tasks) => tasks;

    private static double Dot(float[] u, float[] v) => u.Zip(v, (a, b) => a * (double)b).Sum();
}
