using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;

namespace MultiTaskBert.Api.Operations;

/// <summary>
/// Graceful shutdown, in order: on the stop signal readiness reports unhealthy (load balancers and
/// Kubernetes stop routing here) while requests are still served for <c>Shutdown:DrainDelayMs</c>;
/// then the server stops accepting connections and waits for in-flight requests (up to
/// <c>Shutdown:TimeoutSeconds</c>, the host shutdown timeout); then the engine is disposed.
/// </summary>
internal sealed partial class GracefulShutdownService(DrainState state, IOptions<ShutdownOptions> options, ILogger<GracefulShutdownService> logger)
    : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // Runs before any hosted service (the web server included) is stopped.
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        state.Begin();
        int delay = options.Value.DrainDelayMs;
        LogDraining(logger, delay);
        if (delay > 0)
        {
            try
            {
                await Task.Delay(delay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // Shutdown timeout reached: go on stopping.
            }
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping: readiness is now unhealthy; serving on for {DrainDelayMs} ms before the listener closes")]
    private static partial void LogDraining(ILogger logger, int drainDelayMs);
}
