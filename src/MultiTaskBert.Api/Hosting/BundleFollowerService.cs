using Microsoft.Extensions.Options;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Api.Hosting;

/// <summary>
/// Keeps this replica on the newest published bundle version: every <c>Registry:PollInterval</c> it
/// asks the registry to follow (no file notifications, which shared volumes do not deliver). The
/// metrics are created here so that they report from the start.
/// </summary>
internal sealed partial class BundleFollowerService(BundleRegistry registry, RegistryMetrics metrics, IOptions<RegistryOptions> options, ILogger<BundleFollowerService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        GC.KeepAlive(metrics);
        using var timer = new PeriodicTimer(options.Value.PollInterval);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            if (registry.Status is null)
            {
                continue; // the start-up load has not finished
            }

            try
            {
                await registry.FollowAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One failed poll never stops following: the version in service keeps serving.
                LogPollFailed(logger, ex);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Looking for a newer bundle version failed; trying again at the next poll")]
    private static partial void LogPollFailed(ILogger logger, Exception exception);
}
