using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Core.Batching;

/// <summary>
/// Dynamic micro-batching in front of <see cref="MultiTaskEngine"/>: the loop that waits, runs and
/// delivers; <see cref="BatchPolicy"/> decides when a batch closes and which requests join it. Each
/// request is validated and tokenized on its caller's thread, then queued (bounded: a full queue
/// throws <see cref="QueueFullException"/>). One consumer loop forms batches and hands each to a
/// thread-pool thread, up to <see cref="BatchingOptions.MaxConcurrentBatches"/> at once. Requests
/// with different task sets share the trunk pass; every request gets exactly its own results. While
/// every run slot is busy, new requests queue up and form the next batch as soon as one frees, so
/// the batch size adapts to the load.
/// <para>
/// A request cancelled while waiting completes as cancelled and is left out of its batch; one
/// cancelled during the run has its result discarded, and when every request of a running batch
/// is cancelled the batch's ONNX Runtime runs are terminated, which frees its run slot. When a batch of several requests fails,
/// each request is retried alone, so a failure reaches only the requests it belongs to.
/// <see cref="BatchingOptions.MaxWaitMs"/> = 0 bypasses the queue: every request runs on its own.
/// </para>
/// </summary>
public sealed partial class MicroBatcher : IAsyncDisposable, IDisposable
{
    private readonly MultiTaskEngine _engine;
    private readonly BatchingOptions _options;
    private readonly ILogger<MicroBatcher> _logger;
    private readonly BatchPolicy _policy;
    private readonly Channel<PendingRequest> _channel = Channel.CreateUnbounded<PendingRequest>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _stopping = new();
    private readonly Meter? _ownedMeter;
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<int> _batchRequests;
    private readonly Histogram<int> _batchTokens;
    private readonly Histogram<double> _queueWait;
    private readonly Histogram<int> _batchConcurrent;
    private readonly Counter<long> _rejected;
    private readonly Task _consumer;
    private readonly SemaphoreSlim _runSlots;
    private int _depth;
    private int _running;
    private long _lastArrival;
    private long _interArrivalTicks; // Moving average; starts at 0 ("busy") so the first requests wait.
    private int _disposed;

    public MicroBatcher(MultiTaskEngine engine, BatchingOptions options, ILogger<MicroBatcher> logger, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(options);
        _engine = engine;
        _options = options;
        _logger = logger;
        _policy = new BatchPolicy(options, Stopwatch.Frequency);
        _runSlots = new SemaphoreSlim(options.MaxConcurrentBatches, options.MaxConcurrentBatches);

        Meter meter = meterFactory?.Create(ServiceMeter.Name) ?? (_ownedMeter = new Meter(ServiceMeter.Name));
        Meter = meter;
        _batchSize = meter.CreateHistogram<int>("mtbert.batch.size", "{input}", "Inputs (utterances) per engine batch");
        _batchRequests = meter.CreateHistogram<int>("mtbert.batch.requests", "{request}", "HTTP requests merged into one engine batch");
        _batchTokens = meter.CreateHistogram<int>("mtbert.batch.tokens", "{token}", "Padded tokens per engine batch (rows x longest row)");
        _batchConcurrent = meter.CreateHistogram<int>("mtbert.batch.concurrent", "{batch}", "Batches running when a batch starts, itself included (at most Batching:MaxConcurrentBatches)");
        _queueWait = meter.CreateHistogram<double>("mtbert.queue.wait", "ms", "Time a request waited in the queue before its batch ran");
        _rejected = meter.CreateCounter<long>("mtbert.queue.rejected", "{request}", "Requests refused because the queue was full");
        meter.CreateObservableGauge("mtbert.queue.depth", () => Volatile.Read(ref _depth), "{request}", "Requests waiting for a batch");

        _consumer = options.Enabled ? Task.Run(ConsumeAsync) : Task.CompletedTask;
    }

    public BatchingOptions Options => _options;

    /// <summary>The meter this batcher reports to (tests listen to it).</summary>
    internal Meter Meter { get; }

    /// <summary>Requests waiting for a batch now.</summary>
    public int QueueDepth => Volatile.Read(ref _depth);

    /// <inheritdoc cref="ClassifyAsync(ClassifyQuery, CancellationToken)"/>
    public Task<RequestPredictions> ClassifyAsync(IReadOnlyList<ClassifyInput> inputs, IReadOnlyList<string>? tasks, CancellationToken cancellationToken = default) =>
        ClassifyAsync(new ClassifyQuery(inputs, tasks), cancellationToken);

    /// <summary>
    /// Same contract as <see cref="MultiTaskEngine.ClassifyAsync(ClassifyQuery, CancellationToken)"/>:
    /// bad input throws <see cref="InvalidClassifyRequestException"/> at once (never affects other requests).
    /// </summary>
    public Task<RequestPredictions> ClassifyAsync(ClassifyQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (!_options.Enabled)
        {
            return _engine.ClassifyAsync(query, cancellationToken);
        }

        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        PreparedRequest prepared = _engine.Prepare(query);
        try
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (Interlocked.Increment(ref _depth) > _options.QueueCapacity)
            {
                Interlocked.Decrement(ref _depth);
                _rejected.Add(1);
                throw new QueueFullException(_options.QueueCapacity);
            }
        }
        catch
        {
            prepared.Dispose();
            throw;
        }

        RecordArrival();

        // The pending request disposes the prepared one (and with it the snapshot's lease) when it leaves the batcher.
        var pending = new PendingRequest(prepared, cancellationToken);
        if (!_channel.Writer.TryWrite(pending))
        {
            Interlocked.Decrement(ref _depth);
            pending.Fail(new ObjectDisposedException(nameof(MicroBatcher)));
        }

        return pending.Task;
    }

    /// <summary>Updates the moving average of the time between arrivals (benign races: it is a heuristic).</summary>
    private void RecordArrival()
    {
        long now = Stopwatch.GetTimestamp();
        long previous = Interlocked.Exchange(ref _lastArrival, now);
        if (previous != 0)
        {
            Volatile.Write(ref _interArrivalTicks, BatchPolicy.NextArrivalGap(Volatile.Read(ref _interArrivalTicks), now - previous));
        }
    }

    private async Task ConsumeAsync()
    {
        ChannelReader<PendingRequest> reader = _channel.Reader;
        var waiting = new List<PendingRequest>();
        bool holdingSlot = false;
        try
        {
            while (true)
            {
                // The next batch forms once a run slot is free, so everything that arrived while
                // all slots were busy can join it: the batch size follows the load.
                if (!holdingSlot)
                {
                    await _runSlots.WaitAsync(_stopping.Token).ConfigureAwait(false);
                    holdingSlot = true;
                }

                if (waiting.Count == 0 && !await reader.WaitToReadAsync(_stopping.Token).ConfigureAwait(false))
                {
                    break;
                }

                Drain(reader, waiting);
                if (waiting.Count == 0 || !await WaitForCompanyAsync(reader, waiting).ConfigureAwait(false))
                {
                    continue;
                }

                if (reader.Completion.IsCompleted)
                {
                    // Disposal completed the queue and ended the wait: what still waits leaves with the
                    // shutdown's cancellation (below), never racing the stop that follows.
                    break;
                }

                List<PendingRequest> batch = TakeBatch(waiting);
                holdingSlot = false; // The batch's run frees it.
                _ = Task.Run(() => RunBatchInSlotAsync(batch));
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // Shutting down.
        }
        catch (Exception ex)
        {
            LogConsumerFailed(_logger, ex);
            throw;
        }
        finally
        {
            if (holdingSlot)
            {
                _runSlots.Release();
            }

            Drain(reader, waiting);
            foreach (PendingRequest pending in waiting)
            {
                Interlocked.Decrement(ref _depth);
                pending.Fail(new OperationCanceledException("The service is shutting down."));
            }
        }
    }

    /// <summary>Waits for company until the policy closes the batch; false when every waiting request was cancelled meanwhile.</summary>
    private async Task<bool> WaitForCompanyAsync(ChannelReader<PendingRequest> reader, List<PendingRequest> waiting)
    {
        while (true)
        {
            long waitLeft = _policy.WaitLeft(waiting, Stopwatch.GetTimestamp(), Volatile.Read(ref _interArrivalTicks));
            if (waitLeft <= 0 || !await WaitForMoreAsync(reader, Stopwatch.GetElapsedTime(0, waitLeft)).ConfigureAwait(false))
            {
                return true;
            }

            Drain(reader, waiting);
            if (waiting.Count == 0)
            {
                return false;
            }
        }
    }

    private async Task<bool> WaitForMoreAsync(ChannelReader<PendingRequest> reader, TimeSpan remaining)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        timeout.CancelAfter(remaining);
        try
        {
            return await reader.WaitToReadAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return false; // Deadline reached.
        }
    }

    /// <summary>Moves queued requests into <paramref name="waiting"/> (arrival order), dropping cancelled ones.</summary>
    private void Drain(ChannelReader<PendingRequest> reader, List<PendingRequest> waiting)
    {
        while (reader.TryRead(out PendingRequest? pending))
        {
            waiting.Add(pending);
        }

        int removed = waiting.RemoveAll(p =>
        {
            if (!p.Task.IsCompleted)
            {
                return false;
            }

            p.Finish(); // Cancelled while waiting: leaves without running.
            return true;
        });
        if (removed > 0)
        {
            Interlocked.Add(ref _depth, -removed);
        }
    }

    /// <summary>Moves the next batch the policy selects out of <paramref name="waiting"/>; the rest stay, in arrival order.</summary>
    private List<PendingRequest> TakeBatch(List<PendingRequest> waiting)
    {
        IReadOnlyList<int> members = _policy.Select(waiting);
        List<PendingRequest> batch = [.. members.Select(i => waiting[i])];
        if (batch.Count == 1)
        {
            waiting.RemoveAt(0); // The anchor alone.
        }
        else
        {
            var taken = new HashSet<PendingRequest>(batch);
            waiting.RemoveAll(taken.Contains);
        }

        Interlocked.Add(ref _depth, -batch.Count);
        return batch;
    }

    /// <summary>Runs a batch on a thread-pool thread and frees its run slot; never throws (each request gets its outcome).</summary>
    private async Task RunBatchInSlotAsync(List<PendingRequest> batch)
    {
        _batchConcurrent.Record(Interlocked.Increment(ref _running));
        try
        {
            await RunBatchAsync(batch).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref _running);
            _runSlots.Release();
        }
    }

    private async Task RunBatchAsync(List<PendingRequest> batch)
    {
        long started = Stopwatch.GetTimestamp();
        var load = default(BatchLoad);
        foreach (PendingRequest pending in batch)
        {
            load += pending.Load;
            _queueWait.Record(Stopwatch.GetElapsedTime(pending.EnqueuedAt, started).TotalMilliseconds);
        }

        _batchSize.Record(load.Inputs);
        _batchRequests.Record(batch.Count);
        _batchTokens.Record((int)load.PaddedTokens);

        using var nobodyWaits = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        List<CancellationTokenRegistration> callers = CancelWhenAllCallersCancel(batch, nobodyWaits);
        try
        {
            IReadOnlyList<RequestPredictions> results = await _engine.RunAsync([.. batch.Select(p => p.Request)], nobodyWaits.Token).ConfigureAwait(false);
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].Complete(results[i]);
            }
        }
        catch (OperationCanceledException ex) when (nobodyWaits.IsCancellationRequested)
        {
            // Every caller left (or the service stops): the run was terminated, nobody needs a retry.
            batch.ForEach(p => p.Fail(ex));
        }
        catch (Exception ex) when (batch.Count > 1 && !_stopping.IsCancellationRequested)
        {
            // Find out whose failure it is: every request alone.
            LogBatchFailed(_logger, batch.Count, ex);
            foreach (PendingRequest pending in batch)
            {
                await RunAloneAsync(pending).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            batch.ForEach(p => p.Fail(ex));
        }
        finally
        {
            callers.ForEach(r => r.Dispose());
        }
    }

    /// <summary>
    /// Cancels <paramref name="nobodyWaits"/> once every request of the batch is cancelled (timed out,
    /// client gone): the engine then terminates the batch's ONNX Runtime runs and its slot frees.
    /// </summary>
    private static List<CancellationTokenRegistration> CancelWhenAllCallersCancel(List<PendingRequest> batch, CancellationTokenSource nobodyWaits)
    {
        int waiting = batch.Count;
        var registrations = new List<CancellationTokenRegistration>(batch.Count);
        foreach (PendingRequest pending in batch)
        {
            registrations.Add(pending.CallerToken.Register(() =>
            {
                if (Interlocked.Decrement(ref waiting) == 0)
                {
                    nobodyWaits.Cancel();
                }
            }));
        }

        return registrations;
    }

    private async Task RunAloneAsync(PendingRequest pending)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, pending.CallerToken);
        try
        {
            IReadOnlyList<RequestPredictions> alone = await _engine.RunAsync([pending.Request], stop.Token).ConfigureAwait(false);
            pending.Complete(alone[0]);
        }
        catch (Exception single)
        {
            pending.Fail(single);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _channel.Writer.TryComplete();
        await _stopping.CancelAsync().ConfigureAwait(false);
        try
        {
            await _consumer.ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // Logged by the loop.
        }

        // Batches still running finish (their requests get results or the shutdown's cancellation)
        // before the batcher is gone: taking every run slot waits for them.
        for (int slot = 0; slot < _options.MaxConcurrentBatches; slot++)
        {
            await _runSlots.WaitAsync().ConfigureAwait(false);
        }

        _runSlots.Dispose();
        _stopping.Dispose();
        _ownedMeter?.Dispose();
    }

    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    [LoggerMessage(Level = LogLevel.Warning, Message = "A batch of {Requests} requests failed; retrying each request alone")]
    private static partial void LogBatchFailed(ILogger logger, int requests, Exception exception);

    [LoggerMessage(Level = LogLevel.Critical, Message = "The micro-batching loop failed")]
    private static partial void LogConsumerFailed(ILogger logger, Exception exception);
}
