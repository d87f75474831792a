using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Api;

[Collection(ApiCollection.Name)]
public sealed class ClassifyApiTests(ApiFactory factory)
{
    private readonly HttpClient _client = factory.CreateClient();

    private static string ModelId => $"{TestBundle.Manifest.Name}@{TestBundle.Manifest.Version}";

    private async Task<JsonElement> PostOk(string path, object body)
    {
        using HttpResponseMessage response = await _client.PostAsJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {text}");
        return JsonDocument.Parse(text).RootElement;
    }

    [Fact]
    public async Task Every_task_of_the_bundle_answers()
    {
        foreach (var task in TestBundle.Manifest.Tasks)
        {
            object body = task.Input == "pair"
                ? new { text = "how do i reset my password?", textPair = "i forgot my password", tasks = new[] { task.Name } }
                : new { text = "the movie was great", tasks = new[] { task.Name } };

            JsonElement json = await PostOk("/classify", body);

            Assert.Equal(ModelId, json.GetProperty("model").GetString());
            JsonElement result = json.GetProperty("results").GetProperty(task.Name);
            switch (task.Output.Kind)
            {
                case "classification":
                    // One of the labels, or the fallback label when the out-of-domain rule answered.
                    Assert.Contains(result.GetProperty("label").GetString(), task.Output.Fallback is { } f ? [.. task.Output.Labels!, f.Label] : task.Output.Labels!);
                    Assert.InRange(result.GetProperty("score").GetDouble(), 0, 1);
                    Assert.Equal(task.Output.Labels!.Order(), result.GetProperty("scores").EnumerateObject().Select(p => p.Name).Order());
                    break;
                case "regression":
                    Assert.Equal(JsonValueKind.Number, result.GetProperty("value").ValueKind);
                    Assert.False(result.TryGetProperty("label", out _));
                    break;
                case "tagging":
                    // One {word, tag} per whitespace word of the text; entities carry original-text offsets.
                    Assert.Equal(["the", "movie", "was", "great"], result.GetProperty("tags").EnumerateArray().Select(t => t.GetProperty("word").GetString()));
                    Assert.All(result.GetProperty("tags").EnumerateArray(), t => Assert.Contains(t.GetProperty("tag").GetString(), task.Output.Tags!));
                    Assert.All(result.GetProperty("entities").EnumerateArray(), e => Assert.Equal(
                        "the movie was great"[e.GetProperty("start").GetInt32()..e.GetProperty("end").GetInt32()],
                        e.GetProperty("text").GetString()));
                    Assert.False(result.TryGetProperty("label", out _));
                    break;
            }
        }
    }

    [Fact]
    public async Task Labels_agree_with_the_pytorch_reference()
    {
        foreach (ParityCase reference in ParityFile.Fixture.Cases)
        {
            JsonElement json = await PostOk("/classify", new { text = reference.Text, textPair = reference.TextPair, tasks = reference.Outputs.Keys });
            foreach ((string task, float[] logits) in reference.Outputs)
            {
                var manifestTask = TestBundle.Manifest.Tasks.Single(t => t.Name == task);
                if (manifestTask.Output.Kind == "classification")
                {
                    int argMax = Array.IndexOf(logits, logits.Max());
                    // The model's own top label: the answer's, or the fallback's when the out-of-domain rule answered instead.
                    JsonElement result = json.GetProperty("results").GetProperty(task);
                    string? top = result.TryGetProperty("fallback", out JsonElement fallback) ? fallback.GetProperty("topLabel").GetString() : result.GetProperty("label").GetString();
                    Assert.Equal(manifestTask.Output.Labels![argMax], top);
                }
            }
        }
    }

    [Fact]
    public async Task Without_tasks_a_single_sentence_runs_every_single_sentence_task_but_the_embedding()
    {
        JsonElement json = await PostOk("/classify", new { text = "the movie was great" });

        Assert.Equal(
            TestBundle.Manifest.Tasks.Where(t => t.Input == "single" && t.Output.Kind != "embedding" && t.ServedByDefault != false).Select(t => t.Name).Order(),
            json.GetProperty("results").EnumerateObject().Select(p => p.Name).Order());
    }

    [Fact]
    public async Task Without_tasks_a_pair_runs_every_pair_task()
    {
        JsonElement json = await PostOk("/classify", new { text = "a man plays guitar", textPair = "someone plays an instrument" });

        Assert.Equal(
            TestBundle.Manifest.Tasks.Where(t => t.Input == "pair" && t.ServedByDefault != false).Select(t => t.Name).Order(),
            json.GetProperty("results").EnumerateObject().Select(p => p.Name).Order());
    }

    [Fact]
    public async Task Regression_task_gives_a_value_in_range()
    {
        var task = TestBundle.RegressionTask;
        object body = task.Input == "pair"
            ? new { text = "a man plays guitar", textPair = "someone plays an instrument", tasks = new[] { task.Name } }
            : new { text = "a man plays guitar", tasks = new[] { task.Name } };

        JsonElement json = await PostOk("/classify", body);

        double value = json.GetProperty("results").GetProperty(task.Name).GetProperty("value").GetDouble();
        if (task.Output.Range is { } range)
        {
            Assert.InRange(value, range[0], range[1]);
        }
    }

    [Fact]
    public async Task Batch_results_keep_input_order()
    {
        string task = TestBundle.SingleClassificationTask.Name;
        string[] texts = ["the movie was great", "terrible", "an utterly forgettable film with a thin plot", "good"];

        JsonElement batch = await PostOk("/classify/batch", new { inputs = texts.Select(t => new { text = t }), tasks = new[] { task } });

        JsonElement[] results = [.. batch.GetProperty("results").EnumerateArray()];
        Assert.Equal(ModelId, batch.GetProperty("model").GetString());
        Assert.Equal(texts.Length, results.Length);
        for (int i = 0; i < texts.Length; i++)
        {
            JsonElement alone = await PostOk("/classify", new { text = texts[i], tasks = new[] { task } });
            double expected = alone.GetProperty("results").GetProperty(task).GetProperty("score").GetDouble();
            Assert.Equal(expected, results[i].GetProperty(task).GetProperty("score").GetDouble(), 4);
        }
    }

    [Fact]
    public async Task Batch_default_tasks_follow_each_input_kind()
    {
        JsonElement batch = await PostOk("/classify/batch", new
        {
            inputs = new object[] { new { text = "the movie was great" }, new { text = "a man plays", textPair = "someone plays" } },
        });

        JsonElement[] results = [.. batch.GetProperty("results").EnumerateArray()];
        Assert.Equal(TestBundle.Manifest.Tasks.Where(t => t.Input == "single" && t.Output.Kind != "embedding" && t.ServedByDefault != false).Select(t => t.Name).Order(), results[0].EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal(TestBundle.Manifest.Tasks.Where(t => t.Input == "pair" && t.ServedByDefault != false).Select(t => t.Name).Order(), results[1].EnumerateObject().Select(p => p.Name).Order());
    }
}
