using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Batching;

/// <summary>Micro-batching through the HTTP pipeline: configuration, concurrency, a full queue.</summary>
[Collection(StartUpCollection.Name)]
public sealed class BatchingApiTests
{
    private static object Body(string text) => new { text, tasks = new[] { TestBundle.SingleClassificationTask.Name } };

    [Fact]
    public async Task Concurrent_http_requests_get_their_own_answers_with_batching_on_and_off()
    {
        string[] texts = [.. Enumerable.Range(0, 24).Select(i => $"utterance number {i} is {(i % 2 == 0 ? "great" : "awful")}")];
        var answers = new Dictionary<string, string[]>();
        foreach (string wait in new[] { "5", "0" })
        {
            await using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Batching:MaxWaitMs"] = wait });
            using HttpClient client = factory.CreateClient();
            string[] scores = await Task.WhenAll(texts.Select(async text =>
            {
                using HttpResponseMessage response = await client.PostAsJsonAsync("/classify", Body(text));
                string json = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, json);
                return JsonDocument.Parse(json).RootElement.GetProperty("results").GetProperty(TestBundle.SingleClassificationTask.Name)
                    .GetProperty("scores").GetRawText();
            }));
            answers[wait] = scores;
        }

        for (int i = 0; i < texts.Length; i++)
        {
            using JsonDocument on = JsonDocument.Parse(answers["5"][i]);
            using JsonDocument off = JsonDocument.Parse(answers["0"][i]);
            foreach (JsonProperty label in on.RootElement.EnumerateObject())
            {
                Assert.True(Math.Abs(label.Value.GetDouble() - off.RootElement.GetProperty(label.Name).GetDouble()) <= 1e-4, $"{texts[i]}: {label.Name}");
            }
        }
    }

    [Fact]
    public async Task A_full_queue_answers_503_problem_details_with_retry_after()
    {
        await using var factory = new ConfiguredApiFactory(new Dictionary<string, string?>
        {
            ["Batching:MaxWaitMs"] = "10000",
            ["Batching:QueueCapacity"] = "1",
        });
        using HttpClient client = factory.CreateClient();
        MicroBatcher batcher = factory.Services.GetRequiredService<MicroBatcher>();
        using var cancellation = new CancellationTokenSource();

        // The first request waits for company (up to 10 s) and fills the queue.
        Task<HttpResponseMessage> waiting = client.PostAsJsonAsync("/classify", Body("the first request"), cancellation.Token);
        while (batcher.QueueDepth < 1)
        {
            Assert.False(waiting.IsCompleted, "the first request should wait in the queue");
            await Task.Delay(10);
        }

        using HttpResponseMessage refused = await client.PostAsJsonAsync("/classify", Body("one too many"));

        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);
        Assert.NotNull(refused.Headers.RetryAfter);
        JsonElement problem = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(503, problem.GetProperty("status").GetInt32());
        Assert.Contains("queue is full", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);

        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
    }

    [Theory]
    [InlineData("Batching:MaxBatchSize", "0")]
    [InlineData("Batching:MaxBatchTokens", "0")]
    [InlineData("Batching:MaxWaitMs", "-1")]
    [InlineData("Batching:QueueCapacity", "0")]
    [InlineData("Batching:MaxConcurrentBatches", "0")]
    [InlineData("Batching:BucketOverheadTokens", "-1")]
    [InlineData("Inference:BucketOverheadTokens", "-1")]
    public async Task Invalid_batching_options_stop_start_up_naming_the_key(string key, string value)
    {
        Exception error = await StartUpFailure.OfAsync(new Dictionary<string, string?> { [key] = value });
        Assert.Contains(key.Split(':')[1], error.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Batching")]
    [InlineData("Inference")] // deprecated place, still honoured
    public async Task The_engine_runs_batches_with_the_configured_run_settings(string section)
    {
        await using var factory = new ConfiguredApiFactory(new Dictionary<string, string?>
        {
            [$"{section}:ParallelHeads"] = "true",
            [$"{section}:BucketOverheadTokens"] = "7",
        });

        BatchingOptions settings = factory.Services.GetRequiredService<MultiTaskEngine>().Batching;

        Assert.True(settings.ParallelHeads);
        Assert.Equal(7, settings.BucketOverheadTokens);
    }

    [Fact]
    public async Task The_configured_pass_limit_reaches_the_engine()
    {
        await using var factory = new ConfiguredApiFactory(new Dictionary<string, string?> { ["Batching:MaxPassTokens"] = "300" });

        Assert.Equal(300, factory.Services.GetRequiredService<MultiTaskEngine>().PassTokens);
    }
}
