using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace MultiTaskBert.Tests.Faults;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FaultCollection : ICollectionFixture<ServiceCluster>
{
    public const string Name = "faults";
}

/// <summary>
/// Fault tests on loopback: nginx (docker/nginx.conf) in front of two service processes. Bounded
/// request counts and durations; figures are printed and appended to fault-figures.md next to the
/// test assembly (docs/reliability.md keeps a run's figures).
/// </summary>
[Collection(FaultCollection.Name)]
[Trait("Category", "Fault")]
public sealed partial class FaultTests(ServiceCluster cluster, ITestOutputHelper output)
{
    private static readonly string[] LoadTasks = ["sst2", "snips"];

    private const string LoadBody = """{"text":"a fine film with a great cast","tasks":["sst2","snips"]}""";

    private static bool IsFullAnswer(string body) => body.Contains("\"sst2\"", StringComparison.Ordinal) && body.Contains("\"snips\"", StringComparison.Ordinal);

    [Fact]
    public void The_test_nginx_config_is_docker_nginx_conf_with_loopback_addresses_only()
    {
        string deployed = File.ReadAllText(ServiceCluster.RepositoryFile("docker/nginx.conf"));
        string[] directives = ["proxy_next_upstream ", "proxy_next_upstream_tries", "proxy_next_upstream_timeout", "max_fails=", "proxy_connect_timeout", "proxy_read_timeout", "error_page", "Retry-After"];

        foreach (string directive in directives)
        {
            string[] inDeployed = [.. Lines(deployed, directive).Select(l => l.Replace("api1:8080", "UP").Replace("api2:8080", "UP", StringComparison.Ordinal))];
            string[] inTest = [.. Lines(cluster.NginxConfig, directive).Select(l => LoopbackUpstream().Replace(l, "UP"))];
            Assert.NotEmpty(inDeployed);
            Assert.Equal(inDeployed, inTest);
        }

        Assert.Contains("non_idempotent", deployed);
    }

    [Theory]
    [InlineData("/metrics")]
    [InlineData("/swagger/v1/swagger.json")]
    [InlineData("/swagger/index.html")]
    public async Task The_load_balancer_does_not_pass_the_operator_surface_on_even_where_a_replica_serves_it(string path)
    {
        // These replicas have no management port, so they serve the path themselves: only nginx refuses it.
        if (!cluster.Replicas.Any(r => r.IsRunning))
        {
            await EnsureBothReplicasAsync();
        }

        using var client = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(cluster.Replicas.First(r => r.IsRunning).BaseAddress, path))).StatusCode);

        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync(new Uri(cluster.BaseAddress, path))).StatusCode);
    }

    [Fact]
    public async Task Killing_a_replica_under_load_fails_no_client_request()
    {
        await EnsureBothReplicasAsync();
        ServiceCluster.Replica victim = cluster.Replicas[0];
        try
        {
            LoadFigures figures = await LoadRun.RunAsync("kill one replica mid-run", cluster.BaseAddress,
                workers: 6, maxRequests: 8000, maxDuration: TimeSpan.FromSeconds(12),
                _ => LoadRun.Json("/classify", LoadBody), IsFullAnswer,
                during: async _ =>
                {
                    await Task.Delay(TimeSpan.FromSeconds(3));
                    victim.Kill(); // SIGKILL: in-flight requests lose their connection
                });
            Report(figures);

            Assert.False(victim.IsRunning);
            Assert.True(figures.ActionDoneAtSeconds < figures.Seconds - 1, $"the kill came after the load: {figures.ActionDoneAtSeconds:0.0} s");
            Assert.Equal(0, figures.Failed);
            Assert.Equal(0, figures.Rejected503);
            Assert.True(figures.Succeeded > 50, figures.ToString());
        }
        finally
        {
            await EnsureBothReplicasAsync();
        }
    }

    [Fact]
    public async Task Stopping_a_replica_gracefully_under_load_fails_no_client_request()
    {
        await EnsureBothReplicasAsync();
        ServiceCluster.Replica victim = cluster.Replicas[1];
        int exitCode = -1;
        try
        {
            LoadFigures figures = await LoadRun.RunAsync("graceful stop (SIGTERM) of one replica mid-run", cluster.BaseAddress,
                workers: 6, maxRequests: 8000, maxDuration: TimeSpan.FromSeconds(10),
                _ => LoadRun.Json("/classify", LoadBody), IsFullAnswer,
                during: async _ =>
                {
                    await Task.Delay(TimeSpan.FromSeconds(3));
                    await Task.Run(victim.Terminate);
                    exitCode = victim.Process!.ExitCode;
                });
            Report(figures, $"replica exit code {exitCode}");

            Assert.Equal(0, exitCode); // drained and stopped cleanly within the shutdown timeout
            Assert.True(figures.ActionDoneAtSeconds < figures.Seconds - 1, $"the stop came after the load: {figures.ActionDoneAtSeconds:0.0} s");
            Assert.Equal(0, figures.Failed);
            Assert.Equal(0, figures.Rejected503);
        }
        finally
        {
            await EnsureBothReplicasAsync();
        }
    }

    [Fact]
    public async Task Hot_replacing_a_head_and_refusing_corrupt_ones_under_load_fails_no_request()
    {
        await EnsureBothReplicasAsync();
        int version = await VersionOnAllAsync("sst2");
        var outcomes = new List<string>();

        LoadFigures figures = await LoadRun.RunAsync("hot-replace a head, then corrupt heads, under load", cluster.BaseAddress,
            workers: 6, maxRequests: 10000, maxDuration: TimeSpan.FromSeconds(12),
            _ => LoadRun.Json("/classify", LoadBody), IsFullAnswer,
            during: async _ =>
            {
                await Task.Delay(TimeSpan.FromSeconds(2));
                foreach (ServiceCluster.Replica replica in cluster.Replicas)
                {
                    outcomes.Add($"replace r{replica.Number}: {(int)(await ReplaceAsync(replica, version + 1)).StatusCode}");
                }

                await Task.Delay(TimeSpan.FromSeconds(1));
                foreach (ServiceCluster.Replica replica in cluster.Replicas)
                {
                    outcomes.Add($"truncated r{replica.Number}: {(int)(await UploadCorruptAsync(replica, version + 2)).StatusCode}");
                    outcomes.Add($"wrong width r{replica.Number}: {(int)(await WrongWidthAsync(replica, version + 2)).StatusCode}");
                    outcomes.Add($"foreign fingerprint r{replica.Number}: {(int)(await ForeignFingerprintAsync(replica, version + 2)).StatusCode}");
                }
            });
        Report(figures, string.Join("; ", outcomes));

        Assert.Equal(0, figures.Failed);
        Assert.Equal(0, figures.Rejected503);
        Assert.True(figures.ActionDoneAtSeconds < figures.Seconds, $"the admin changes came after the load: {figures.ActionDoneAtSeconds:0.0} s");
        Assert.All(outcomes.Where(o => o.StartsWith("replace", StringComparison.Ordinal)), o => Assert.EndsWith(": 200", o));
        Assert.All(outcomes.Where(o => !o.StartsWith("replace", StringComparison.Ordinal)), o => Assert.EndsWith(": 422", o));
        Assert.Equal(version + 1, await VersionOnAllAsync("sst2")); // the refused heads never served
    }

    [Fact]
    public async Task Flooding_past_the_queue_bound_gives_only_503_with_retry_after_bounded_memory_and_recovery()
    {
        await EnsureBothReplicasAsync();
        long baseline = cluster.Replicas.Max(r => ServiceCluster.ResidentBytes(r.Process!));
        long peak = baseline;
        string batch = JsonSerializer.Serialize(new
        {
            inputs = Enumerable.Range(0, 64).Select(i => new { text = $"utterance number {i} about a fine film with a great cast and a long plot" }),
            tasks = LoadTasks,
        });

        LoadFigures figures = await LoadRun.RunAsync("flood past the queue bound", cluster.BaseAddress,
            workers: 160, maxRequests: 6000, maxDuration: TimeSpan.FromSeconds(10),
            _ => LoadRun.Json("/classify/batch", batch), body => body.Contains("\"results\"", StringComparison.Ordinal),
            during: async duration =>
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                while (clock.Elapsed < duration)
                {
                    peak = Math.Max(peak, cluster.Replicas.Max(r => ServiceCluster.ResidentBytes(r.Process!)));
                    await Task.Delay(200);
                }
            });

        // Recovery: after nginx's fail_timeout every request is served again.
        await Task.Delay(TimeSpan.FromSeconds(4));
        LoadFigures after = await LoadRun.RunAsync("after the flood", cluster.BaseAddress,
            workers: 2, maxRequests: 40, maxDuration: TimeSpan.FromSeconds(20),
            _ => LoadRun.Json("/classify", LoadBody), IsFullAnswer);
        Report(figures, $"replica RSS: baseline {baseline / 1048576} MiB, peak {peak / 1048576} MiB");
        Report(after);

        Assert.Equal(0, figures.Failed);
        Assert.True(figures.Rejected503 > 0, "the flood never reached the queue bound: " + figures);
        Assert.Equal(0, figures.Rejected503WithoutRetryAfter);
        Assert.True(peak - baseline < 768L * 1024 * 1024, $"memory grew by {(peak - baseline) / 1048576} MiB");
        Assert.Equal(after.Sent, after.Succeeded);
        Assert.True(await QueueRejectionsAsync() > 0, "no replica's queue refused a request (the 503s came from nginx only)");
    }

    /// <summary>Sum over the replicas of the batching queue's rejection counter (mtbert.queue.rejected).</summary>
    private async Task<double> QueueRejectionsAsync()
    {
        double total = 0;
        foreach (ServiceCluster.Replica replica in cluster.Replicas)
        {
            using var client = new HttpClient { BaseAddress = replica.BaseAddress };
            Match match = QueueRejected().Match(await client.GetStringAsync("/metrics"));
            total += match.Success ? double.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        }

        return total;
    }

    private async Task EnsureBothReplicasAsync()
    {
        foreach (ServiceCluster.Replica replica in cluster.Replicas.Where(r => !r.IsRunning))
        {
            replica.Start();
            await replica.WaitReadyAsync(TimeSpan.FromSeconds(90));
        }

        // nginx may still hold a restarted replica as failed for fail_timeout: wait until both answer through it.
        await Task.Delay(TimeSpan.FromSeconds(3.5));
    }

    private async Task<int> VersionOnAllAsync(string task)
    {
        var versions = new HashSet<int>();
        foreach (ServiceCluster.Replica replica in cluster.Replicas)
        {
            using var client = new HttpClient { BaseAddress = replica.BaseAddress };
            JsonElement tasks = JsonDocument.Parse(await client.GetStringAsync("/tasks")).RootElement.GetProperty("tasks");
            versions.Add(tasks.EnumerateArray().Single(t => t.GetProperty("name").GetString() == task).GetProperty("version").GetInt32());
        }

        return Assert.Single(versions);
    }

    private static JsonObject Entry(ServiceCluster.Replica replica, string task)
    {
        JsonObject manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(replica.BundleDirectory, "manifest.json")))!.AsObject();
        var entry = (JsonObject)manifest["tasks"]!.AsArray().First(t => (string?)t!["name"] == task)!.DeepClone();
        entry["head"]!.AsObject().Remove("sha256");
        return entry;
    }

    /// <summary>A new version: the fixture head under a new file name (same graph, new manifest version).</summary>
    private static async Task<HttpResponseMessage> ReplaceAsync(ServiceCluster.Replica replica, int version)
    {
        string file = $"heads/sst2-fault-v{version}.onnx";
        JsonObject entry = Entry(replica, "sst2");
        File.Copy(ServedHead(replica, entry), Path.Combine(replica.BundleDirectory, file), overwrite: true);
        entry["version"] = version;
        entry["head"]!["file"] = file;
        using HttpClient admin = replica.AdminClient();
        return await admin.PostAsJsonAsync("/admin/tasks", entry);
    }

    /// <summary>The head file the entry names (a replaced head's file is deleted once no snapshot reads it).</summary>
    private static string ServedHead(ServiceCluster.Replica replica, JsonObject entry) =>
        Path.Combine(replica.BundleDirectory, (string)entry["head"]!["file"]!);

    private static async Task<HttpResponseMessage> UploadCorruptAsync(ServiceCluster.Replica replica, int version)
    {
        JsonObject entry = Entry(replica, "sst2");
        byte[] head = await File.ReadAllBytesAsync(ServedHead(replica, entry));
        entry["version"] = version;
        using var form = new MultipartFormDataContent
        {
            { new StringContent(entry.ToJsonString(), Encoding.UTF8, "application/json"), "manifest" },
            { new ByteArrayContent(head[..(head.Length / 2)]), "head", "sst2.onnx" },
        };
        using HttpClient admin = replica.AdminClient();
        return await admin.PostAsync("/admin/tasks", form);
    }

    private static async Task<HttpResponseMessage> WrongWidthAsync(ServiceCluster.Replica replica, int version)
    {
        JsonObject entry = Entry(replica, "sst2");
        entry["version"] = version;
        entry["output"]!["labels"] = new JsonArray("negative", "neutral", "positive");
        using HttpClient admin = replica.AdminClient();
        return await admin.PostAsJsonAsync("/admin/tasks", entry);
    }

    private static async Task<HttpResponseMessage> ForeignFingerprintAsync(ServiceCluster.Replica replica, int version)
    {
        JsonObject entry = Entry(replica, "sst2");
        entry["version"] = version;
        entry["pretrainedFingerprint"] = new string('f', 64);
        using HttpClient admin = replica.AdminClient();
        return await admin.PostAsJsonAsync("/admin/tasks", entry);
    }

    private void Report(LoadFigures figures, string? note = null)
    {
        string line = figures + (note is null ? "" : $" [{note}]");
        output.WriteLine(line);
        File.AppendAllText(Path.Combine(AppContext.BaseDirectory, "fault-figures.md"), $"- {DateTime.UtcNow:u} {line}\n");
    }

    private static IEnumerable<string> Lines(string config, string directive) =>
        config.Split('\n').Select(l => l.Trim()).Where(l => l.Contains(directive, StringComparison.Ordinal) && !l.StartsWith('#'));

    [GeneratedRegex(@"(?m)^multitaskbert_mtbert_queue_rejected(?:_total)?(?:\{[^}]*\})? (\S+)$")]
    private static partial Regex QueueRejected();

    [GeneratedRegex(@"127\.0\.0\.1:\d+")]
    private static partial Regex LoopbackUpstream();
}
