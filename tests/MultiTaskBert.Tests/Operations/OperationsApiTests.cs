using System.Net;
using System.Net.Http.Json;
using Microsoft.Extensions.DependencyInjection;
using MultiTaskBert.Api.Operations;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Operations;

/// <summary>Metrics export, request ids, readiness during shutdown.</summary>
public sealed class OperationsApiTests : IDisposable
{
    private static readonly string[] UnknownTask = ["no-such-task"];

    private readonly ConfiguredApiFactory _factory = new(new Dictionary<string, string?>());

    [Fact]
    public async Task Metrics_export_requests_latencies_and_loaded_tasks_in_prometheus_format()
    {
        HttpClient client = _factory.CreateClient();
        string task = TestBundle.SingleClassificationTask.Name;
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/classify", new { text = "fine", tasks = new[] { task } })).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsJsonAsync("/classify", new { text = "fine", tasks = UnknownTask })).StatusCode);

        HttpResponseMessage response = await client.GetAsync("/metrics");
        string text = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("mtbert_requests", text);
        Assert.Contains($"task=\"{task}\"", text);
        Assert.Contains("task=\"(unknown)\"", text);
        Assert.Contains("status=\"400\"", text);
        Assert.Contains("mtbert_request_duration", text);
        Assert.Contains("mtbert_trunk_duration", text);
        Assert.Contains("mtbert_head_duration", text);
        Assert.Contains("mtbert_tasks_loaded", text);
        Assert.Contains("_bucket{", text);
    }

    [Fact]
    public async Task Each_host_exports_its_own_measurements()
    {
        using var other = new ConfiguredApiFactory(new Dictionary<string, string?>());
        HttpClient client = _factory.CreateClient();
        HttpClient otherClient = other.CreateClient();
        string task = TestBundle.SingleClassificationTask.Name;
        Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsJsonAsync("/classify", new { text = "fine", tasks = UnknownTask })).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await otherClient.PostAsJsonAsync("/classify", new { text = "fine", tasks = new[] { task } })).StatusCode);

        string mine = await client.GetStringAsync("/metrics");
        string theirs = await otherClient.GetStringAsync("/metrics");

        Assert.Contains("task=\"(unknown)\"", mine);
        Assert.DoesNotContain("task=\"(unknown)\"", theirs);
        Assert.Contains($"task=\"{task}\"", theirs);
    }

    [Theory]
    [InlineData("abc-123.x:y_z", "abc-123.x:y_z")]
    [InlineData("has spaces", null)]
    [InlineData(null, null)]
    public async Task Every_response_carries_a_request_id(string? sent, string? echoed)
    {
        HttpClient client = _factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health/live");
        if (sent is not null)
        {
            request.Headers.TryAddWithoutValidation(RequestIdMiddleware.HeaderName, sent);
        }

        HttpResponseMessage response = await client.SendAsync(request);

        string id = Assert.Single(response.Headers.GetValues(RequestIdMiddleware.HeaderName));
        if (echoed is not null)
        {
            Assert.Equal(echoed, id);
        }
        else
        {
            Assert.Matches("^[0-9a-f]{32}$", id);
        }
    }

    [Fact]
    public async Task Problem_details_carry_the_request_id_as_trace_id()
    {
        HttpClient client = _factory.CreateClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/no-such-endpoint");
        request.Headers.Add(RequestIdMiddleware.HeaderName, "req-42");

        HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("req-42", Assert.Single(response.Headers.GetValues(RequestIdMiddleware.HeaderName)));
    }

    [Fact]
    public async Task Readiness_turns_false_when_shutdown_begins_while_liveness_stays_true()
    {
        HttpClient client = _factory.CreateClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/ready")).StatusCode);

        _factory.Services.GetRequiredService<DrainState>().Begin();

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health/live")).StatusCode);
    }

    [Fact]
    public async Task A_request_past_the_timeout_is_cancelled_and_answered_504()
    {
        // The request waits in the batching queue (up to 5 s for company) longer than it may take.
        using var factory = new ConfiguredApiFactory(new Dictionary<string, string?>
        {
            ["Limits:RequestTimeoutMs"] = "300",
            ["Batching:MaxWaitMs"] = "5000",
        });
        HttpClient client = factory.CreateClient();

        HttpResponseMessage response = await client.PostAsJsonAsync("/classify", new { text = "fine" });

        Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
        Assert.Contains("Limits:RequestTimeoutMs", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_host_logs_through_its_own_logger_and_leaves_the_static_one_alone()
    {
        // Were the host to install its logger as Serilog's static Log.Logger, stopping it would close
        // whatever is there, the logger of another host in the same process included.
        Serilog.ILogger before = Serilog.Log.Logger;
        await using (var other = new ConfiguredApiFactory(new Dictionary<string, string?>()))
        {
            Assert.Equal(HttpStatusCode.OK, (await other.CreateClient().GetAsync("/health/live")).StatusCode);
            Assert.Same(before, Serilog.Log.Logger);
        }

        Assert.Same(before, Serilog.Log.Logger);
        Assert.Equal(HttpStatusCode.OK, (await _factory.CreateClient().GetAsync("/health/live")).StatusCode);
    }

    public void Dispose() => _factory.Dispose();
}
