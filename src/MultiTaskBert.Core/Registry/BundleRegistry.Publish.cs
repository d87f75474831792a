using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Core.Registry;

/// <summary>The one publish every change goes through (compare-and-swap on the next version number, re-applied on conflict).</summary>
public sealed partial class BundleRegistry
{
    /// <summary>
    /// Plans <paramref name="plan"/> on the newest version, validates and warms it up, publishes it
    /// as the next version and serves it. Another replica's version published first: planned again
    /// on top of that one. <paramref name="needsNewest"/>: the change edits the newest version's
    /// tasks, so it is refused (409) while the newest cannot be served here.
    /// </summary>
    private async Task<(long Number, ModelBundle Bundle)> PublishAsync(
        Func<BundleSnapshot, JsonObject, CancellationToken, Task<PlannedVersion>> plan, bool needsNewest, CancellationToken cancellationToken)
    {
        for (int attempt = 1; attempt <= _options.PublishAttempts; attempt++)
        {
            await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                long newest = await CatchUpAsync(cancellationToken).ConfigureAwait(false);
                if (needsNewest && newest != _served!.Number)
                {
                    throw new TaskConflictException("(bundle)", $"the newest published version {newest} cannot be served ({Status?.RefusedReason}); "
                        + $"this change would edit it: roll back (POST /admin/rollback) to a version that serves first");
                }

                BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
                PlannedVersion planned = await plan(current, (JsonObject)_served!.Manifest.DeepClone(), cancellationToken).ConfigureAwait(false);
                ModelBundle bundle = Stamp(planned, current.Bundle.Manifest.Version, newest + 1);
                if (await TryPublishAsync(current, bundle, planned, newest + 1, cancellationToken).ConfigureAwait(false))
                {
                    return (newest + 1, bundle);
                }

                LogLostRace(_logger, newest + 1, attempt);
            }
            finally
            {
                _changes.Release();
            }
        }

        throw new TaskConflictException("(bundle)",
            $"other replicas published {_options.PublishAttempts} versions while this change was being applied (Registry:PublishAttempts); send it again");
    }

    /// <summary>The next version's model id (the bundle version's last number + 1) and publication record.</summary>
    private static ModelBundle Stamp(PlannedVersion planned, string servedVersion, long number)
    {
        string version = ManifestFile.BumpVersion(servedVersion);
        planned.Manifest["version"] = version;
        planned.Manifest["published"] = new JsonObject
        {
            ["number"] = number,
            ["change"] = planned.Change,
            ["at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            ["by"] = Environment.MachineName,
        };
        return planned.Bundle with { Manifest = planned.Bundle.Manifest with { Version = version } };
    }

    /// <summary>Builds and warms the snapshot, publishes; on success collects garbage and swaps. False: the number was taken.</summary>
    private async Task<bool> TryPublishAsync(BundleSnapshot current, ModelBundle bundle, PlannedVersion planned, long number, CancellationToken cancellationToken)
    {
        BundleSnapshot snapshot = BundleSnapshot.Derive(current, bundle, _sessions);
        try
        {
            await _engine.WarmUpAsync(snapshot, planned.WarmUp, cancellationToken).ConfigureAwait(false);
            // Past this point the change is not cancelled: once published, it is served.
            if (!await Store.TryPublishAsync(number, planned.Manifest, CancellationToken.None).ConfigureAwait(false))
            {
                snapshot.Dispose();
                return false;
            }
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }

        await CollectGarbageAsync(current, snapshot, number).ConfigureAwait(false);
        _snapshots.Replace(current, snapshot);
        long previous = _served!.Number;
        _served = new PublishedVersion(number, planned.Manifest);
        SetStatus(number, Status);
        LogPublished(_logger, number, bundle.ModelId, previous, planned.Change);
        return true;
    }

    private async Task CollectGarbageAsync(BundleSnapshot current, BundleSnapshot snapshot, long number)
    {
        try
        {
            int removed = await VersionCollector.CollectAsync(Store, current.Bundle.Directory, number, _options, current, snapshot, CancellationToken.None).ConfigureAwait(false);
            if (removed > 0)
            {
                LogCollected(_logger, removed, _options.KeepVersions);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or BundleValidationException)
        {
            LogCollectFailed(_logger, ex.Message); // what is published and served is unaffected; the next publish tries again
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Published bundle version {Number} ({Model}), was version {Previous}: {Change}")]
    private static partial void LogPublished(ILogger logger, long number, string model, long previous, string change);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle version {Number} was published by another replica first (attempt {Attempt}): applying the change again on top of it")]
    private static partial void LogLostRace(ILogger logger, long number, int attempt);

    [LoggerMessage(Level = LogLevel.Information, Message = "Collected {Removed} bundle versions older than the newest {Keep} and the files only they read")]
    private static partial void LogCollected(ILogger logger, int removed, int keep);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Garbage collection of old bundle versions failed (tried again at the next publish): {Problem}")]
    private static partial void LogCollectFailed(ILogger logger, string problem);
}
