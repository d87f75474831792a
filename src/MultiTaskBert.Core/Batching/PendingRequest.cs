using System.Diagnostics;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Core.Batching;

/// <summary>
/// One queued request and the promise its caller awaits: the prepared request goes to the engine
/// and is disposed when it leaves the batcher. It completes as cancelled as soon as its caller cancels.
/// </summary>
internal sealed class PendingRequest : IBatchCandidate<BundleSnapshot>
{
    private readonly TaskCompletionSource<RequestPredictions> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenRegistration _registration;
    private int _finished;

    public PendingRequest(PreparedRequest request, CancellationToken cancellationToken)
    {
        Request = request;
        CallerToken = cancellationToken;
        Load = new BatchLoad(request.InputCount, request.RowCount, request.MaxLength);
        EnqueuedAt = Stopwatch.GetTimestamp();
        if (cancellationToken.CanBeCanceled)
        {
            _registration = cancellationToken.Register(static (state, token) => ((PendingRequest)state!)._completion.TrySetCanceled(token), this);
        }
    }

    public PreparedRequest Request { get; }

    /// <summary>The caller's token: cancelled when the client is gone or the request timed out.</summary>
    public CancellationToken CallerToken { get; }

    public BatchLoad Load { get; }

    /// <summary>When it was queued (<see cref="Stopwatch.GetTimestamp"/>).</summary>
    public long EnqueuedAt { get; }

    public BundleSnapshot Snapshot => Request.Snapshot;

    public Task<RequestPredictions> Task => _completion.Task;

    public void Complete(RequestPredictions result)
    {
        _completion.TrySetResult(result);
        Finish();
    }

    public void Fail(Exception exception)
    {
        if (exception is OperationCanceledException canceled)
        {
            _completion.TrySetCanceled(canceled.CancellationToken);
        }
        else
        {
            _completion.TrySetException(exception);
        }

        Finish();
    }

    /// <summary>Called once the request left the batcher (ran, failed, or dropped as cancelled).</summary>
    public void Finish()
    {
        if (Interlocked.Exchange(ref _finished, 1) == 0)
        {
            _registration.Dispose();
            Request.Dispose();
        }
    }
}
