using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Api.Hosting;

/// <summary>
/// Loads, validates and warms up the configured bundle while the host starts, so that a bundle
/// that cannot be served stops start-up with a message naming the file and the field.
/// </summary>
internal sealed partial class BundleLoaderService(BundleRegistry registry, IOptions<ModelOptions> options, ILogger<BundleLoaderService> logger)
    : IHostedService
{
    /// <summary>A temporary file untouched this long is a leftover: uploads and publishes write theirs within seconds.</summary>
    internal static readonly TimeSpan StaleAfter = TimeSpan.FromHours(1);

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        string path = options.Value.ResolveBundlePath();
        LogLoading(logger, path);
        // Another replica may be uploading or publishing into a shared folder right now: only old leftovers go.
        foreach (string leftover in BundleTempFiles.RemoveStale(path, StaleAfter))
        {
            LogRemovedLeftover(logger, leftover);
        }

        try
        {
            await registry.LoadAsync(path, cancellationToken);
        }
        catch (BundleValidationException ex)
        {
            LogInvalidBundle(logger, path, ex.Message);
            throw;
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(Level = LogLevel.Information, Message = "Loading model bundle from {BundlePath}")]
    private static partial void LogLoading(ILogger logger, string bundlePath);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Removed {File}: a temporary file left by an interrupted upload, manifest rewrite or publish")]
    private static partial void LogRemovedLeftover(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Critical, Message = "Model bundle {BundlePath} cannot be served: {Problem}")]
    private static partial void LogInvalidBundle(ILogger logger, string bundlePath, string problem);
}
