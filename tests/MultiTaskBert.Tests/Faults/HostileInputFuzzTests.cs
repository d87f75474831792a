using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Xunit.Abstractions;

namespace MultiTaskBert.Tests.Faults;

/// <summary>One real service process (Kestrel on loopback, no nginx) for the hostile-input suite.</summary>
public sealed class LoneService : IAsyncLifetime
{
    private readonly ServiceCluster _cluster = new();

    public ServiceCluster.Replica Replica { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Replica = await _cluster.StartLoneReplicaAsync(new Dictionary<string, string>
        {
            ["Batching__QueueCapacity"] = "1024",
            ["Serilog__MinimumLevel__Default"] = "Error",
            // The memory run's largest batches, three clients at once, measure memory, not latency: on a
            // busy 2-core machine one waited past the cluster's 20 s (ServiceCluster.ReplicaSettings) and got its 504.
            ["Limits__RequestTimeoutMs"] = "120000",
        });

    public Task DisposeAsync() => _cluster.DisposeAsync();
}

/// <summary>
/// Fuzz suite of issue #19 on a real service process: a seeded, bounded set of hostile requests
/// (<see cref="HostileCases"/>) must never get a 5xx, the original tasks must answer exactly as
/// before afterwards, and resident memory must stay within its bound under a long run of the
/// largest batches. Counts go to fault-figures.md (docs/reliability.md).
/// </summary>
[Trait("Category", "Fault")]
public sealed class HostileInputFuzzTests(LoneService service, ITestOutputHelper output) : IClassFixture<LoneService>
{
    private const int Seed = 19;
    private const int PerCategory = 60;

    private static readonly string[] ReferenceBodies =
    [
        """{"text":"a fine film with a great cast"}""",
        """{"text":"A man is playing a guitar.","textPair":"Someone plays an instrument."}""",
        """{"text":"wake me up at 7 am tomorrow","tasks":["snips_slots"]}""",
    ];

    private static readonly string[] TamperedHeads = ["ext-sibling.onnx", "ext-parent.onnx", "ext-absolute.onnx"];

    [Fact]
    public async Task No_hostile_request_gets_a_5xx_and_the_original_tasks_answer_as_before()
    {
        using HttpClient client = Client();
        string tasksBefore = await client.GetStringAsync("/tasks");
        string[] before = await AnswersAsync(client);
        byte[] validHead = await File.ReadAllBytesAsync(Path.Combine(service.Replica.BundleDirectory, "heads", "sst2.onnx"));
        byte[][] tampered = [.. TamperedHeads.Select(f => File.ReadAllBytes(ServiceCluster.RepositoryFile("tests/fixtures/hostile/" + f)))];
        IReadOnlyList<HostileCase> cases = HostileCases.Generate(Seed, PerCategory, ServiceCluster.AdminKey, validHead, tampered);

        var statuses = new Dictionary<(string Category, int Status), int>();
        var serverErrors = new List<string>();
        var bySize = new Dictionary<string, int>();
        var clock = Stopwatch.StartNew();
        foreach (HostileCase hostile in cases)
        {
            using HttpRequestMessage request = hostile.Make();
            int status;
            string body;
            try
            {
                using HttpResponseMessage response = await client.SendAsync(request);
                status = (int)response.StatusCode;
                body = await response.Content.ReadAsStringAsync();
            }
            catch (HttpRequestException ex)
            {
                status = 0; // the server closed the connection (Kestrel refuses some bodies that way): not a 5xx, counted apart
                body = ex.Message;
            }

            statuses[(hostile.Category, status)] = statuses.GetValueOrDefault((hostile.Category, status)) + 1;
            if (status >= 500)
            {
                serverErrors.Add($"{hostile.Category} {hostile.Name}: {status} {body[..Math.Min(300, body.Length)]}");
            }

            if (hostile.Category == "size limits")
            {
                bySize[hostile.Name] = status;
            }
        }

        Report(cases.Count, statuses, clock.Elapsed);
        Assert.True(serverErrors.Count == 0, string.Join("\n", serverErrors));
        Assert.True(service.Replica.IsRunning);

        // The chunked and Content-Length limits agree (a chunked body at or under the limit was a 413).
        // Over the limit, the 413 to a chunked body comes while the client is still sending, and the
        // server closes the connection after it: HttpClient may see either.
        foreach (int bytes in new[] { 1_048_000, HostileCases.MaxRequestBodyBytes })
        {
            Assert.Equal(200, bySize[$"{bytes} bytes with Content-Length"]);
            Assert.Equal(200, bySize[$"{bytes} bytes chunked"]);
        }

        Assert.Equal(413, bySize[$"{HostileCases.MaxRequestBodyBytes + 1} bytes with Content-Length"]);
        Assert.True(bySize[$"{HostileCases.MaxRequestBodyBytes + 1} bytes chunked"] is 413 or 0);
        Assert.Equal(await client.GetStringAsync("/tasks"), tasksBefore);
        Assert.Equal(before, await AnswersAsync(client));
        Assert.Empty(Directory.GetFiles(service.Replica.BundleDirectory, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Resident_memory_stays_bounded_under_a_long_run_of_the_largest_batches()
    {
        using HttpClient client = Client();
        Process process = service.Replica.Process!;
        await AnswersAsync(client); // warm-up: every task once, small inputs
        await Task.Delay(500);
        long resting = ServiceCluster.ResidentBytes(process);

        // The largest requests the limits allow: 64 inputs of 2,000 characters, words that tokenize
        // to the maximum sequence length, single and pair rows, every task; 3 clients back to back.
        var random = new Random(Seed);
        string Words(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => Vocabulary[random.Next(Vocabulary.Length)]))[..HostileCases.MaxTextChars];
        string[] bodies = [.. Enumerable.Range(0, 4).Select(b => "{\"inputs\":[" + string.Join(",", Enumerable.Range(0, HostileCases.MaxBatchInputs)
            .Select(i => i % 2 == 0 ? $"{{\"text\":\"{Words(600)}\"}}" : $"{{\"text\":\"{Words(600)}\",\"textPair\":\"{Words(600)}\"}}")) + "]}")];
        long peak = resting;
        using var sampling = new CancellationTokenSource();
        Task sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peak = Math.Max(peak, ServiceCluster.ResidentBytes(process));
                await Task.Delay(50);
            }
        });
        int sent = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 3).Select(async worker =>
        {
            for (int i = 0; i < Requests / 3; i++)
            {
                using HttpResponseMessage response = await client.PostAsync("/classify/batch", new StringContent(bodies[(worker + i) % bodies.Length], Encoding.UTF8, "application/json"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                Interlocked.Increment(ref sent);
            }
        }));
        TimeSpan loadTime = clock.Elapsed;
        await AnswersAsync(client);
        await Task.Delay(1000);
        long oneSecondAfter = ServiceCluster.ResidentBytes(process);
        await sampling.CancelAsync();
        await sampler;
        // Issue #25 item 6 bounds the memory 30 s after the load: the service gives it back once idle (Memory:IdleTrimSeconds).
        await Task.Delay(TimeSpan.FromSeconds(29));
        long after = ServiceCluster.ResidentBytes(process);

        string line = $"memory: {sent} batches of {HostileCases.MaxBatchInputs} × {HostileCases.MaxTextChars} characters in {loadTime.TotalSeconds:0.0} s " +
            $"(Inference:CpuArena={Environment.GetEnvironmentVariable("Inference__CpuArena") ?? "On (default)"}, Memory:IdleTrimSeconds={Environment.GetEnvironmentVariable("Memory__IdleTrimSeconds") ?? "5 (default)"}): " +
            $"RSS resting after warm-up {Mib(resting)} MiB, peak {Mib(peak)} MiB ({(double)peak / resting:0.00}x), " +
            $"1 s after the load {Mib(oneSecondAfter)} MiB ({(double)oneSecondAfter / resting:0.00}x), 30 s after {Mib(after)} MiB ({(double)after / resting:0.00}x)";
        output.WriteLine(line);
        File.AppendAllText(Path.Combine(AppContext.BaseDirectory, "fault-figures.md"), "- " + line + "\n");
        Assert.True(peak <= MaxPeakOverResting * resting, line);
        Assert.True(after <= MaxAfterOverResting * resting, line);
    }

    private const int Requests = 60;
    private const double MaxPeakOverResting = 2.0;
    // Issue #25 item 6: 30 s after the load. One second after it the server GC's regions and the C
    // allocator's heaps still hold 1.5-1.8x; the idle trim (IdleMemoryTrimmer) returns them.
    private const double MaxAfterOverResting = 1.5;

    private static readonly string[] Vocabulary = ["the", "film", "is", "remarkably", "unaffable", "xyzzy", "naïve", "中文", "7", "am", "tomorrow", "great", "plot", "!"];

    private static long Mib(long bytes) => bytes / (1024 * 1024);

    private HttpClient Client() => new() { BaseAddress = service.Replica.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };

    private static async Task<string[]> AnswersAsync(HttpClient client)
    {
        var answers = new List<string>();
        foreach (string body in ReferenceBodies)
        {
            using HttpResponseMessage response = await client.PostAsync("/classify", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            answers.Add(JsonNode.Parse(await response.Content.ReadAsStringAsync())!["results"]!.ToJsonString());
        }

        return [.. answers];
    }

    private void Report(int total, Dictionary<(string Category, int Status), int> statuses, TimeSpan elapsed)
    {
        var lines = new List<string> { $"hostile-input fuzz (seed {Seed}): {total} requests in {elapsed.TotalSeconds:0.0} s" };
        foreach (IGrouping<string, KeyValuePair<(string Category, int Status), int>> category in statuses.GroupBy(s => s.Key.Category))
        {
            lines.Add($"  {category.Key}: {category.Sum(s => s.Value)} — " +
                string.Join(", ", category.OrderBy(s => s.Key.Status).Select(s => $"{(s.Key.Status == 0 ? "closed" : s.Key.Status.ToString(CultureInfo.InvariantCulture))} ×{s.Value}")));
        }

        foreach (string line in lines)
        {
            output.WriteLine(line);
        }

        File.AppendAllText(Path.Combine(AppContext.BaseDirectory, "fault-figures.md"), string.Join("\n", lines.Select(l => "- " + l)) + "\n");
    }
}
