using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Batching;

/// <summary>
/// The micro-batcher on the fixture bundle. Nothing is timed: batch boundaries are observed through
/// the batcher's own metrics (one <c>mtbert.batch.requests</c> measurement per engine batch), and
/// long <c>MaxWaitMs</c> values make the closing rule under test the only one that can fire.
/// </summary>
public sealed class MicroBatcherTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private static readonly string[] Texts =
    [
        "the movie was great",
        "a dull , tedious mess",
        "book a table for two at eight",
        "what is the weather like in paris tomorrow",
        "this is fine",
        "i would not recommend it to anyone who likes good films",
    ];

    private static string SingleTask => TestBundle.SingleClassificationTask.Name;

    private static string PairTask => TestBundle.PairTask.Name;

    // The default selection: single-sentence tasks but the embedding (run only when named).
    private static string[] SingleTasks => [.. TestBundle.Manifest.Tasks.Where(t => t.Input == "single" && t.Output.Kind != "embedding").Select(t => t.Name)];

    private MicroBatcher Create(double maxWaitMs, int maxBatchSize = 32, int maxBatchTokens = 8192, int queueCapacity = 1024, int maxConcurrentBatches = 2) =>
        new(fixture.Engine, new BatchingOptions
        {
            MaxWaitMs = maxWaitMs,
            MaxBatchSize = maxBatchSize,
            MaxBatchTokens = maxBatchTokens,
            QueueCapacity = queueCapacity,
            MaxConcurrentBatches = maxConcurrentBatches,
        }, NullLogger<MicroBatcher>.Instance);

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    public async Task Concurrent_requests_each_get_exactly_their_own_results(int maxConcurrentBatches)
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 5, maxBatchSize: 8, maxConcurrentBatches: maxConcurrentBatches);
        using var batches = new BatchRecorder(batcher);
        // Mixed task sets, single and pair inputs, one- and multi-input requests.
        var requests = new List<(ClassifyInput[] Inputs, string[]? Tasks)>();
        for (int i = 0; i < 48; i++)
        {
            string text = Texts[i % Texts.Length];
            requests.Add((i % 4) switch
            {
                0 => ([new ClassifyInput(text)], [SingleTask]),
                1 => ([new ClassifyInput(text, Texts[(i + 1) % Texts.Length])], [PairTask, SingleTask]),
                2 => ([new ClassifyInput(text), new ClassifyInput(Texts[(i + 2) % Texts.Length])], null),
                _ => ([new ClassifyInput(text, "an utterance pair")], null),
            });
        }

        RequestPredictions[] batched = await Task.WhenAll(requests.Select(r => Task.Run(() => batcher.ClassifyAsync(r.Inputs, r.Tasks))));

        for (int i = 0; i < requests.Count; i++)
        {
            RequestPredictions alone = await fixture.Engine.ClassifyAsync(requests[i].Inputs, requests[i].Tasks);
            AssertSameResults(alone, batched[i], $"request {i}");
        }

        Assert.NotEmpty(batches.Concurrent);
        Assert.All(batches.Concurrent, running => Assert.InRange(running, 1, maxConcurrentBatches));
    }

    [Fact]
    public async Task Disposing_while_a_batch_waits_for_company_cancels_the_waiting_request()
    {
        MicroBatcher batcher = Create(maxWaitMs: 10_000, maxBatchSize: 32);
        Task<RequestPredictions> waiting = batcher.ClassifyAsync([new ClassifyInput(Texts[0])], [SingleTask]);
        await Task.Delay(100); // Time for the loop to take it and wait for company (10 s); still queued, it leaves the same way.

        await batcher.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));

        // The queue's completion ends the wait; the batch does not start: the caller gets the
        // shutdown's cancellation, never a result.
        Assert.True(waiting.IsCanceled, $"request ended as {waiting.Status}: {waiting.Exception}");
    }

    [Fact]
    public async Task Disposing_waits_for_running_batches_and_leaves_no_request_hanging()
    {
        MicroBatcher batcher = Create(maxWaitMs: 1, maxBatchSize: 2, maxConcurrentBatches: 3);
        Task<RequestPredictions>[] calls = [.. Enumerable.Range(0, 40).Select(i => batcher.ClassifyAsync([new ClassifyInput(Texts[i % Texts.Length])], null))];

        await batcher.DisposeAsync();

        // Every request has its outcome once disposal returns: a result, or the shutdown's cancellation.
        Assert.All(calls, call => Assert.True(call.IsCompleted, "a request was still pending after disposal"));
        Assert.All(calls.Where(c => c.IsCompletedSuccessfully), c => Assert.Equal(SingleTasks.Order(), c.Result.Results[0].Keys.Order()));
        Assert.All(calls.Where(c => !c.IsCompletedSuccessfully), c => Assert.True(c.IsCanceled, $"unexpected failure: {c.Exception}"));
    }

    [Fact]
    public async Task Requests_with_different_task_sets_share_one_engine_batch()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 10_000, maxBatchSize: 3);
        using var batches = new BatchRecorder(batcher);

        Task<RequestPredictions>[] calls =
        [
            batcher.ClassifyAsync([new ClassifyInput(Texts[0])], [SingleTask]),
            batcher.ClassifyAsync([new ClassifyInput(Texts[1], Texts[2])], [PairTask]),
            batcher.ClassifyAsync([new ClassifyInput(Texts[3])], null),
        ];
        RequestPredictions[] results = await Task.WhenAll(calls);

        Assert.Equal([3], batches.Requests);
        Assert.Equal([SingleTask], results[0].Results[0].Keys);
        Assert.Equal([PairTask], results[1].Results[0].Keys);
        Assert.Equal(SingleTasks.Order(), results[2].Results[0].Keys.Order());
    }

    [Fact]
    public async Task A_batch_closes_at_the_maximum_batch_size()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 10_000, maxBatchSize: 2);
        using var batches = new BatchRecorder(batcher);

        await Task.WhenAll(Texts[..4].Select(t => batcher.ClassifyAsync([new ClassifyInput(t)], [SingleTask])));

        Assert.Equal([2, 2], batches.Inputs);
    }

    [Fact]
    public async Task A_batch_closes_at_the_token_budget()
    {
        // Three requests of the same length L with a budget of 2L padded tokens: two fit, the third
        // runs in the next batch (closed by its deadline).
        const string text = "the same utterance";
        RequestPredictions reference = await fixture.Engine.ClassifyAsync([new ClassifyInput(text)], [SingleTask]);
        int length = ((ClassificationPrediction)reference.Results[0][SingleTask]).Logits.Count > 0 ? TokenLength(text) : 0;
        await using MicroBatcher batcher = Create(maxWaitMs: 200, maxBatchSize: 32, maxBatchTokens: 2 * length);
        using var batches = new BatchRecorder(batcher);

        await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => batcher.ClassifyAsync([new ClassifyInput(text)], [SingleTask])));

        Assert.Equal([2, 1], batches.Inputs);
        Assert.All(batches.Tokens, t => Assert.True(t <= 2 * length, $"{t} padded tokens exceed the budget {2 * length}"));
    }

    [Fact]
    public async Task A_lone_request_runs_when_its_wait_expires()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 20, maxBatchSize: 32);
        using var batches = new BatchRecorder(batcher);

        RequestPredictions result = await batcher.ClassifyAsync([new ClassifyInput(Texts[0])], [SingleTask]);

        Assert.Equal([1], batches.Requests);
        Assert.Single(result.Results);
    }

    [Fact]
    public async Task MaxWaitMs_zero_bypasses_the_queue()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 0);
        using var batches = new BatchRecorder(batcher);

        RequestPredictions[] results = await Task.WhenAll(Texts.Select(t => batcher.ClassifyAsync([new ClassifyInput(t)], [SingleTask])));

        Assert.Empty(batches.Requests);
        for (int i = 0; i < Texts.Length; i++)
        {
            AssertSameResults(await fixture.Engine.ClassifyAsync([new ClassifyInput(Texts[i])], [SingleTask]), results[i], Texts[i]);
        }
    }

    [Fact]
    public async Task A_request_cancelled_while_waiting_completes_cancelled_and_leaves_its_batch()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 10_000, maxBatchSize: 2);
        using var batches = new BatchRecorder(batcher);
        using var cancellation = new CancellationTokenSource();

        Task<RequestPredictions> cancelled = batcher.ClassifyAsync([new ClassifyInput(Texts[0])], [SingleTask], cancellation.Token);
        await cancellation.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);

        // Had the cancelled request stayed, it would have formed a batch with the first of these two
        // and the second would have run alone: two batches instead of one.
        await Task.WhenAll(
            batcher.ClassifyAsync([new ClassifyInput(Texts[1])], [SingleTask]),
            batcher.ClassifyAsync([new ClassifyInput(Texts[2])], [SingleTask]));

        Assert.Equal([2], batches.Requests);
        Assert.Equal(0, batcher.QueueDepth);
    }

    [Fact]
    public async Task Bad_input_fails_only_its_own_request()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 10_000, maxBatchSize: 2);

        var bad = await Assert.ThrowsAsync<InvalidClassifyRequestException>(() => batcher.ClassifyAsync([new ClassifyInput(Texts[0])], ["no-such-task"]));
        Assert.Equal("tasks[0]", bad.Field);

        RequestPredictions[] good = await Task.WhenAll(
            batcher.ClassifyAsync([new ClassifyInput(Texts[1])], [SingleTask]),
            batcher.ClassifyAsync([new ClassifyInput(Texts[2])], [SingleTask]));
        Assert.All(good, r => Assert.Single(r.Results));
    }

    [Fact]
    public async Task A_full_queue_refuses_the_request()
    {
        await using MicroBatcher batcher = Create(maxWaitMs: 10_000, maxBatchSize: 32, queueCapacity: 2);
        using var cancellation = new CancellationTokenSource();

        Task<RequestPredictions>[] queued =
        [
            batcher.ClassifyAsync([new ClassifyInput(Texts[0])], [SingleTask], cancellation.Token),
            batcher.ClassifyAsync([new ClassifyInput(Texts[1])], [SingleTask], cancellation.Token),
        ];

        var full = await Assert.ThrowsAsync<QueueFullException>(() => batcher.ClassifyAsync([new ClassifyInput(Texts[2])], [SingleTask]));
        Assert.Equal(2, full.Capacity);
        await cancellation.CancelAsync();
        foreach (Task<RequestPredictions> task in queued)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        }
    }

    [Fact]
    public async Task The_engine_serves_several_requests_in_one_call_with_their_own_results()
    {
        (ClassifyInput[] Inputs, string[]? Tasks)[] requests =
        [
            ([new ClassifyInput(Texts[0])], [SingleTask]),
            ([new ClassifyInput(Texts[1], Texts[2]), new ClassifyInput(Texts[3], Texts[4])], null),
            ([new ClassifyInput(Texts[5], Texts[0])], [SingleTask, PairTask]),
        ];

        PreparedRequest[] prepared = [.. requests.Select(r => fixture.Engine.Prepare(new ClassifyQuery(r.Inputs, r.Tasks)))];
        IReadOnlyList<RequestPredictions> together;
        try
        {
            together = await fixture.Engine.RunAsync(prepared, CancellationToken.None);
        }
        finally
        {
            Array.ForEach(prepared, p => p.Dispose());
        }

        for (int i = 0; i < requests.Length; i++)
        {
            AssertSameResults(await fixture.Engine.ClassifyAsync(requests[i].Inputs, requests[i].Tasks), together[i], $"request {i}");
        }
    }

    private int TokenLength(string text)
    {
        using PreparedRequest prepared = fixture.Engine.Prepare(new ClassifyQuery([new ClassifyInput(text)], [SingleTask]));
        return prepared.MaxLength;
    }

    private static void AssertSameResults(RequestPredictions expected, RequestPredictions actual, string what)
    {
        Assert.Equal(expected.Results.Count, actual.Results.Count);
        for (int input = 0; input < expected.Results.Count; input++)
        {
            Assert.Equal(expected.Results[input].Keys.Order(), actual.Results[input].Keys.Order());
            foreach ((string task, TaskPrediction prediction) in expected.Results[input])
            {
                IReadOnlyList<float> want = prediction.Logits;
                IReadOnlyList<float> got = actual.Results[input][task].Logits;
                Assert.Equal(want.Count, got.Count);
                for (int i = 0; i < want.Count; i++)
                {
                    Assert.True(Math.Abs(want[i] - got[i]) <= 1e-4, $"{what}, input {input}, task {task}, logit {i}: {want[i]} vs {got[i]}");
                }
            }
        }
    }

    /// <summary>Listens to one batcher's meter: one entry per engine batch.</summary>
    private sealed class BatchRecorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Name, int Value)> _measurements = new();

        public BatchRecorder(MicroBatcher batcher)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, batcher.Meter) && instrument.Name.StartsWith("mtbert.batch.", StringComparison.Ordinal))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => _measurements.Enqueue((instrument.Name, value)));
            _listener.Start();
        }

        public int[] Requests => Values("mtbert.batch.requests");

        public int[] Inputs => Values("mtbert.batch.size");

        public int[] Tokens => Values("mtbert.batch.tokens");

        public int[] Concurrent => Values("mtbert.batch.concurrent");

        private int[] Values(string name) => [.. _measurements.Where(m => m.Name == name).Select(m => m.Value)];

        public void Dispose() => _listener.Dispose();
    }
}
