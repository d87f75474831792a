using System.Diagnostics;
using System.Net;
using System.Text;

namespace MultiTaskBert.Tests.Faults;

/// <summary>Figures of one load run, as printed and kept in docs/reliability.md.</summary>
public sealed record LoadFigures(string Scenario, int Sent, int Succeeded, int Failed, int Rejected503, int Rejected503WithoutRetryAfter, double P50Ms, double P99Ms, double MaxMs, double Seconds)
{
    public IReadOnlyDictionary<string, int> FailuresByKind { get; init; } = new Dictionary<string, int>();

    /// <summary>When the action run alongside the load finished (seconds from the start); it must be before the load ended.</summary>
    public double ActionDoneAtSeconds { get; init; }

    public override string ToString() =>
        $"{Scenario}: sent {Sent}, succeeded {Succeeded}, failed {Failed}, 503 {Rejected503} (without Retry-After {Rejected503WithoutRetryAfter}), " +
        $"p50 {P50Ms:0.0} ms, p99 {P99Ms:0.0} ms, max {MaxMs:0.0} ms, {Seconds:0.0} s" +
        (ActionDoneAtSeconds > 0 ? $" (fault action done at {ActionDoneAtSeconds:0.0} s)" : "") +
        (FailuresByKind.Count == 0 ? "" : " — failures: " + string.Join(", ", FailuresByKind.Select(f => $"{f.Key} ×{f.Value}")));
}

/// <summary>
/// Closed-loop load: <c>workers</c> clients each send requests back to back until the request
/// budget or the time limit is spent. Every answer is classified: 200 with the expected body is a
/// success, 503 is a rejection (checked for Retry-After), anything else (or no answer) a failure.
/// </summary>
public static class LoadRun
{
    public static async Task<LoadFigures> RunAsync(
        string scenario,
        Uri baseAddress,
        int workers,
        int maxRequests,
        TimeSpan maxDuration,
        Func<int, HttpRequestMessage> request,
        Func<string, bool> isExpectedBody,
        Func<TimeSpan, Task>? during = null)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = workers, PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        using var client = new HttpClient(handler) { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(30) };
        var latencies = new List<double>(maxRequests);
        var failures = new Dictionary<string, int>();
        int sent = 0, ok = 0, rejected = 0, rejectedBare = 0;
        var clock = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource(maxDuration);

        async Task Worker()
        {
            while (!stop.IsCancellationRequested)
            {
                int n = Interlocked.Increment(ref sent);
                if (n > maxRequests)
                {
                    Interlocked.Decrement(ref sent);
                    return;
                }

                long start = Stopwatch.GetTimestamp();
                string? failure = null;
                try
                {
                    using HttpRequestMessage message = request(n);
                    using HttpResponseMessage response = await client.SendAsync(message);
                    string body = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode == HttpStatusCode.OK && isExpectedBody(body))
                    {
                        Interlocked.Increment(ref ok);
                    }
                    else if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
                    {
                        Interlocked.Increment(ref rejected);
                        if (response.Headers.RetryAfter is null)
                        {
                            Interlocked.Increment(ref rejectedBare);
                        }
                    }
                    else
                    {
                        failure = $"HTTP {(int)response.StatusCode}";
                    }
                }
                catch (HttpRequestException ex)
                {
                    failure = $"{ex.GetType().Name}: {ex.HttpRequestError}";
                }
                catch (TaskCanceledException)
                {
                    failure = "client timeout";
                }

                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                lock (latencies)
                {
                    latencies.Add(ms);
                    if (failure is not null)
                    {
                        failures[failure] = failures.GetValueOrDefault(failure) + 1;
                    }
                }
            }
        }

        Task[] running = [.. Enumerable.Range(0, workers).Select(_ => Task.Run(Worker))];
        double actionDone = 0;
        Task action = during is null ? Task.CompletedTask : Task.Run(async () =>
        {
            await during(maxDuration);
            actionDone = clock.Elapsed.TotalSeconds;
        });
        await Task.WhenAll(running);
        double loadDone = clock.Elapsed.TotalSeconds;
        await action;
        double[] sorted = [.. latencies.Order()];
        return new LoadFigures(scenario, sent, ok, failures.Values.Sum(), rejected, rejectedBare,
            Percentile(sorted, 0.50), Percentile(sorted, 0.99), sorted.Length == 0 ? 0 : sorted[^1], loadDone)
        {
            FailuresByKind = failures,
            ActionDoneAtSeconds = actionDone,
        };
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? 0 : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    public static HttpRequestMessage Json(string path, string json) =>
        new(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
}
