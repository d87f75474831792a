using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Engine;

/// <summary>
/// Issue #25 at run time: a head that got into service (here: without the warm-up that refuses it)
/// and then misbehaves fails its own task only; repeated failures quarantine it; a run past
/// HeadGuards:MaxRunMs and a batch whose every request was cancelled are terminated.
/// </summary>
public sealed class HeadGuardTests
{
    /// <summary>Tokenizes to 17–31 tokens in the fixture (asserted): where nan-mid answers NaN.</summary>
    private const string MidText = "please book a table for two people at the italian restaurant near the old station tomorrow evening";

    /// <summary>Tokenizes to the fixture's 32 tokens (truncated): the slow head's loop would take hours.</summary>
    private static readonly string LongText = string.Join(' ', Enumerable.Repeat("play the song", 20));

    public static TheoryData<string, string> FailingHeads => new()
    {
        { "nan-logits.onnx", "The head's output is not finite." },
        { "nan-regression.onnx", "The head's output is not finite." },
        { "nan-tagging.onnx", "The head's output is not finite." },
        { "fixed-batch.onnx", "The head's output has the wrong shape." },
        { "rank2-hidden.onnx", "The head's run failed." },
        { "rank4-hidden.onnx", "The head's run failed." },
    };

    [Theory]
    [MemberData(nameof(FailingHeads))]
    public async Task A_failing_head_fails_its_own_task_and_the_others_answer(string head, string title)
    {
        using var bundle = new BundleCopy();
        HostileHeads.AddTo(bundle, head, "bad");
        using OnnxSessionFactory sessions = HostileHeads.Sessions();
        using ServingParts serving = await HostileHeads.ServeWithoutWarmUpAsync(sessions, bundle);

        bool pair = HostileHeads.TemplateOf(head) == "stsb";
        RequestPredictions result = await serving.Engine.ClassifyAsync(
            [new ClassifyInput("the movie was great", pair ? "a pair" : null), new ClassifyInput("book a table for two at eight", pair ? "another pair" : null)], tasks: null);

        foreach (IReadOnlyDictionary<string, TaskPrediction> input in result.Results)
        {
            TaskFailure failure = Assert.IsType<TaskFailure>(input["bad"]);
            Assert.Equal(title, failure.Title);
            Assert.DoesNotContain(Environment.NewLine, failure.Detail);
            Assert.True(failure.Detail.Length <= HeadRunner.MaxMessageChars + 200, failure.Detail);
            Assert.All(input.Where(p => p.Key != "bad"), p => Assert.IsNotType<TaskFailure>(p.Value));
        }

        Assert.IsType<TaskErrorResult>(result.Results[0]["bad"].Kind.Answer(result.Results[0]["bad"]));
    }

    [Fact]
    public async Task The_batch_axis_is_checked_and_one_row_alone_passes()
    {
        using var bundle = new BundleCopy();
        HostileHeads.AddTo(bundle, "fixed-batch.onnx", "bad");
        using OnnxSessionFactory sessions = HostileHeads.Sessions();
        using ServingParts serving = await HostileHeads.ServeWithoutWarmUpAsync(sessions, bundle);

        RequestPredictions one = await serving.Engine.ClassifyAsync([new ClassifyInput("the movie was great")], ["bad"]);
        RequestPredictions two = await serving.Engine.ClassifyAsync([new ClassifyInput("the movie was great"), new ClassifyInput("so dull")], ["bad"]);

        Assert.IsType<ClassificationPrediction>(one.Results[0]["bad"]);
        TaskFailure failure = Assert.IsType<TaskFailure>(two.Results[1]["bad"]);
        Assert.Contains("has shape [1, 2], expected [2, 2]", failure.Detail);
    }

    [Fact]
    public async Task Non_finite_values_fail_only_the_inputs_they_belong_to_and_repeated_failures_quarantine_the_head()
    {
        using var bundle = new BundleCopy();
        HostileHeads.AddTo(bundle, "nan-mid.onnx", "bad");
        using OnnxSessionFactory sessions = HostileHeads.Sessions();
        using ServingParts serving = await HostileHeads.ServeWithoutWarmUpAsync(sessions, bundle, new HeadGuardOptions { QuarantineAfter = 2 });
        int tokens = serving.Engine.Current!.Encoder.Encode(MidText, null).Length;
        Assert.InRange(tokens, 17, 31);

        RequestPredictions first = await serving.Engine.ClassifyAsync([new ClassifyInput(MidText)], ["bad", "sst2"]);
        RequestPredictions shortInput = await serving.Engine.ClassifyAsync([new ClassifyInput("so dull")], ["bad"]);
        RequestPredictions second = await serving.Engine.ClassifyAsync([new ClassifyInput(MidText)], ["bad"]);
        Assert.Empty(serving.Engine.Current!.Quarantined);
        RequestPredictions third = await serving.Engine.ClassifyAsync([new ClassifyInput(MidText)], ["bad"]);
        RequestPredictions afterwards = await serving.Engine.ClassifyAsync([new ClassifyInput("so dull")], ["bad", "sst2"]);

        Assert.Contains($"2 values that are NaN or infinite for an input of {tokens} tokens", Assert.IsType<TaskFailure>(first.Results[0]["bad"]).Detail);
        Assert.IsType<ClassificationPrediction>(first.Results[0]["sst2"]);
        Assert.IsType<ClassificationPrediction>(shortInput.Results[0]["bad"]); // a success resets the count
        Assert.IsType<TaskFailure>(second.Results[0]["bad"]);
        Assert.Equal("The head's output is not finite.", Assert.IsType<TaskFailure>(third.Results[0]["bad"]).Title);
        (TaskDefinition task, string reason) = Assert.Single(serving.Engine.Current!.Quarantined);
        Assert.Equal("bad", task.Name);
        Assert.Contains("NaN or infinite", reason);
        TaskFailure quarantined = Assert.IsType<TaskFailure>(afterwards.Results[0]["bad"]);
        Assert.Equal("The head is quarantined.", quarantined.Title);
        Assert.Contains("failed 2 runs in a row", quarantined.Detail);
        Assert.IsType<ClassificationPrediction>(afterwards.Results[0]["sst2"]);
    }

    [Fact]
    public async Task A_head_run_past_its_time_limit_is_terminated_and_fails_its_task_only()
    {
        using var bundle = new BundleCopy();
        HostileHeads.AddTo(bundle, "slow-loop.onnx", "slow");
        using OnnxSessionFactory sessions = HostileHeads.Sessions();
        using ServingParts serving = await HostileHeads.ServeWithoutWarmUpAsync(sessions, bundle, new HeadGuardOptions { MaxRunMs = 200 });

        RequestPredictions result = await serving.Engine.ClassifyAsync([new ClassifyInput(LongText)], ["slow", "sst2"]);

        TaskFailure failure = Assert.IsType<TaskFailure>(result.Results[0]["slow"]);
        Assert.Equal("The head ran past its time limit.", failure.Title);
        Assert.Contains("HeadGuards:MaxRunMs = 200", failure.Detail);
        Assert.IsType<ClassificationPrediction>(result.Results[0]["sst2"]);
    }

    [Fact]
    public async Task A_batch_whose_every_request_was_cancelled_is_terminated_and_frees_its_slot()
    {
        using var bundle = new BundleCopy();
        HostileHeads.AddTo(bundle, "slow-loop.onnx", "slow");
        using OnnxSessionFactory sessions = HostileHeads.Sessions();
        using ServingParts serving = await HostileHeads.ServeWithoutWarmUpAsync(sessions, bundle, new HeadGuardOptions { MaxRunMs = 0 });
        await using var batcher = new MicroBatcher(serving.Engine, new BatchingOptions { MaxWaitMs = 1, MaxConcurrentBatches = 1 }, NullLogger<MicroBatcher>.Instance);
        using var started = new BatchStarts(batcher);
        using var caller = new CancellationTokenSource();

        Task<RequestPredictions> stuck = batcher.ClassifyAsync([new ClassifyInput(LongText)], ["slow"], caller.Token);
        await started.First.WaitAsync(TimeSpan.FromMinutes(1));
        await caller.CancelAsync();
        // One run slot: this answers only once the slow batch's run has stopped (uninterrupted it takes hours).
        RequestPredictions next = await batcher.ClassifyAsync([new ClassifyInput("so dull")], ["sst2"]).WaitAsync(TimeSpan.FromMinutes(2));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => stuck);
        Assert.IsType<ClassificationPrediction>(next.Results[0]["sst2"]);
    }

    /// <summary>Completes when the batcher starts its first batch (its <c>mtbert.batch.requests</c> measurement).</summary>
    private sealed class BatchStarts : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly TaskCompletionSource _first = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public BatchStarts(MicroBatcher batcher)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, batcher.Meter) && instrument.Name == "mtbert.batch.requests")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<int>((_, _, _, _) => _first.TrySetResult());
            _listener.Start();
        }

        public Task First => _first.Task;

        public void Dispose() => _listener.Dispose();
    }
}
