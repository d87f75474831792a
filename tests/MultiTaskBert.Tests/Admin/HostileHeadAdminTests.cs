using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Admin;

/// <summary>
/// Issue #25's reproducers through the admin API: heads that pass the graph checks but misbehave
/// when they run are refused at upload (422 naming the failure, ONNX Runtime's message trimmed,
/// never a 500); one that gets past the warm-up answers a per-task error inside a 200 while the
/// other tasks answer, is quarantined after repeated failures (readiness detail, metric) and can be removed.
/// </summary>
public sealed class HostileHeadAdminTests
{
    /// <summary>17–31 tokens in the fixture: where nan-mid answers NaN.</summary>
    private const string MidText = "please book a table for two people at the italian restaurant near the old station tomorrow evening";

    public static TheoryData<string, string> RefusedAtWarmUp => new()
    {
        { "nan-logits.onnx", "a warm-up run on 2 short inputs: The head's output is not finite." },
        { "nan-regression.onnx", "The head's output is not finite." },
        { "nan-tagging.onnx", "The head's output is not finite." },
        { "fixed-batch.onnx", "The head's output has the wrong shape. head output 'logits' has shape [1, 2], expected [2, 2]" },
        { "rank2-hidden.onnx", "The head's run failed. ONNX Runtime: " },
        { "rank4-hidden.onnx", "The head's run failed. ONNX Runtime: " },
        { "slow-loop.onnx", "The head ran past its time limit. run terminated after" },
        // 2 GiB per row: the 2-row warm-up asks its arena for 4 GiB at once; the fixture's trunk is small, so the budget is the 64 MiB floor.
        { "constant-2gib.onnx", "a warm-up run on 2 short inputs: The head needs more memory than its budget. the run asked for 4096.0 MiB in one allocation with " },
    };

    [Theory]
    [MemberData(nameof(RefusedAtWarmUp))]
    public async Task A_head_that_fails_its_warm_up_is_a_422_and_the_bundle_serves_on(string head, string message)
    {
        using var host = new AdminHost(settings: new Dictionary<string, string?> { ["HeadGuards:MaxRunMs"] = "300" });

        HttpResponseMessage response = await UploadAsync(host, head, "hostile");

        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)response.StatusCode}: {text}");
        string detail = JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString()!;
        Assert.True(detail.Contains(message, StringComparison.Ordinal), detail);
        Assert.DoesNotContain("\n", detail);
        Assert.DoesNotContain(host.Bundle.Directory, detail);
        Assert.Null(await host.VersionOfAsync("hostile"));
        Assert.Empty(Directory.GetFiles(host.Bundle.PathOf("heads"), "hostile-*"));
        await ClassifyDefaultAsync(host, "the movie was great");
    }

    [Fact]
    public async Task A_head_failing_after_admission_answers_an_error_for_its_task_only_then_is_quarantined_and_removable()
    {
        using var host = new AdminHost(settings: new Dictionary<string, string?> { ["HeadGuards:QuarantineAfter"] = "2" });
        Assert.Equal(HttpStatusCode.OK, (await UploadAsync(host, "nan-mid.onnx", "nanmid")).StatusCode);

        JsonElement failed = await ClassifyDefaultAsync(host, MidText);
        JsonElement fine = await ClassifyDefaultAsync(host, "so dull");

        JsonElement error = failed.GetProperty("nanmid").GetProperty("error");
        Assert.Equal("The head's output is not finite.", error.GetProperty("title").GetString());
        Assert.Contains("NaN or infinite", error.GetProperty("detail").GetString());
        Assert.Single(failed.GetProperty("nanmid").EnumerateObject());
        Assert.True(failed.GetProperty("sst2").TryGetProperty("label", out _));
        Assert.True(fine.GetProperty("nanmid").TryGetProperty("label", out _));
        Assert.StartsWith("Healthy: bundle version ", await host.Client.GetStringAsync("/health/ready"));

        await ClassifyDefaultAsync(host, MidText);
        await ClassifyDefaultAsync(host, MidText);
        JsonElement quarantined = await ClassifyDefaultAsync(host, "so dull");
        HttpResponseMessage ready = await host.Client.GetAsync("/health/ready");
        string metrics = await host.Client.GetStringAsync("/metrics");

        Assert.Equal("The head is quarantined.", quarantined.GetProperty("nanmid").GetProperty("error").GetProperty("title").GetString());
        Assert.True(quarantined.GetProperty("sst2").TryGetProperty("label", out _));
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.StartsWith("Degraded: ", await ready.Content.ReadAsStringAsync());
        Assert.Contains("task 'nanmid' version 1 is quarantined (head output 'logits' holds 2 values that are NaN", await ready.Content.ReadAsStringAsync());
        Assert.Contains("mtbert_heads_quarantined{task=\"nanmid\",version=\"1\"", metrics);
        Assert.True(metrics.Contains("mtbert_head_failures{task=\"nanmid\"} 3", StringComparison.Ordinal), string.Join('\n', metrics.Split('\n').Where(l => l.Contains("nanmid", StringComparison.Ordinal))));

        Assert.Equal(HttpStatusCode.OK, (await host.Admin.DeleteAsync("/admin/tasks/nanmid")).StatusCode);
        Assert.StartsWith("Healthy: bundle version ", await host.Client.GetStringAsync("/health/ready"));
    }

    [Fact]
    public async Task A_head_asking_past_its_memory_budget_at_run_time_answers_an_error_for_its_task_only()
    {
        using var host = new AdminHost(settings: new Dictionary<string, string?> { ["HeadGuards:MaxRunMemoryMiB"] = "100" });
        Assert.Equal(HttpStatusCode.OK, (await UploadAsync(host, "constant-mid.onnx", "greedy")).StatusCode);

        JsonElement refused = await ClassifyDefaultAsync(host, MidText);
        JsonElement fine = await ClassifyDefaultAsync(host, "so dull");

        JsonElement error = refused.GetProperty("greedy").GetProperty("error");
        Assert.Equal("The head needs more memory than its budget.", error.GetProperty("title").GetString());
        Assert.StartsWith("the run asked for 2048.0 MiB in one allocation with ", error.GetProperty("detail").GetString());
        Assert.EndsWith("of its 100.0 MiB left (HeadGuards:MaxRunMemoryMiB; 0 = four times the trunk graph's size, at least 64 MiB)", error.GetProperty("detail").GetString());
        Assert.True(refused.GetProperty("sst2").TryGetProperty("label", out _));
        Assert.True(fine.GetProperty("greedy").TryGetProperty("label", out _));
    }

    [Fact]
    public async Task A_batch_answer_keeps_the_other_tasks_when_a_head_fails_and_is_sent_whole()
    {
        using var host = new AdminHost();
        Assert.Equal(HttpStatusCode.OK, (await UploadAsync(host, "nan-mid.onnx", "nanmid")).StatusCode);

        HttpResponseMessage response = await host.Client.PostAsJsonAsync("/classify/batch", new { inputs = new[] { new { text = "so dull" }, new { text = MidText } } });

        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Encoding.UTF8.GetByteCount(text), response.Content.Headers.ContentLength);
        JsonElement results = JsonDocument.Parse(text).RootElement.GetProperty("results");
        // Both rows run padded to the longer one's length, where this head answers NaN.
        foreach (JsonElement input in results.EnumerateArray())
        {
            Assert.True(input.GetProperty("nanmid").TryGetProperty("error", out _));
            Assert.True(input.GetProperty("sst2").TryGetProperty("label", out _));
        }
    }

    private static async Task<JsonElement> ClassifyDefaultAsync(AdminHost host, string text)
    {
        HttpResponseMessage response = await host.Client.PostAsJsonAsync("/classify", new { text });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement.GetProperty("results");
    }

    private static async Task<HttpResponseMessage> UploadAsync(AdminHost host, string head, string task)
    {
        JsonObject entry = HostileHeads.Entry(host.Bundle, head, task);
        using var form = new MultipartFormDataContent
        {
            { new StringContent(entry.ToJsonString(), Encoding.UTF8, "application/json"), "manifest" },
            { new ByteArrayContent(await File.ReadAllBytesAsync(HostileHeads.PathOf(head))), "head", "head.onnx" },
        };
        return await host.Admin.PostAsync("/admin/tasks", form);
    }
}
