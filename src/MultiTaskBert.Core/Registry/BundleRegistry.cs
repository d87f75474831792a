using Microsoft.Extensions.Logging;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// What is in service and every change to it. The bundle's published versions
/// (<see cref="IBundleVersionStore"/>) are the one source of truth shared by every replica: a
/// change publishes a new version through the store's compare-and-swap, then serves it; every
/// replica follows the newest published version (<see cref="FollowAsync"/>).
/// </summary>
/// <remarks>
/// Changes and follows are serialized within a replica. A change is an operation (add/replace,
/// remove, rollback, reload), applied to the newest version: it builds a snapshot that shares every
/// unchanged session with the one in service, validates and warms up what is new, and publishes the
/// next version number. When another replica published that number first, the operation is applied
/// again on top of it (<see cref="RegistryOptions.PublishAttempts"/> times, then 409): no change is
/// lost. The old snapshot is retired: requests that leased it finish on it. Any failure before the
/// publish leaves the old snapshot serving and nothing published.
/// </remarks>
public sealed partial class BundleRegistry : IDisposable
{
    private readonly OnnxSessionFactory _sessions;
    private readonly SnapshotHolder _snapshots;
    private readonly MultiTaskEngine _engine;
    private readonly RegistryOptions _options;
    private readonly Func<string, IBundleVersionStore> _openStore;
    private readonly ILogger<BundleRegistry> _logger;
    private readonly SemaphoreSlim _changes = new(1, 1);
    private IBundleVersionStore? _store;
    private PublishedVersion? _served; // the published version in service (under _changes)
    private VersionStatus? _status;

    /// <summary>
    /// A registry over <paramref name="snapshots"/>; <paramref name="options"/> default to
    /// <see cref="RegistryOptions"/>'s defaults, and <paramref name="openStore"/> (the versions of a
    /// bundle folder) to a <see cref="FolderVersionStore"/> in the folder itself.
    /// </summary>
    public BundleRegistry(OnnxSessionFactory sessions, SnapshotHolder snapshots, MultiTaskEngine engine, ILogger<BundleRegistry> logger,
        RegistryOptions? options = null, Func<string, IBundleVersionStore>? openStore = null)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(engine);
        _sessions = sessions;
        _snapshots = snapshots;
        _engine = engine;
        _logger = logger;
        _options = options ?? new RegistryOptions();
        _openStore = openStore ?? (directory => new FolderVersionStore(directory));
    }

    /// <summary>The folder of the bundle in service (admin uploads are spooled into it).</summary>
    /// <exception cref="EngineNotReadyException">No bundle is in service yet.</exception>
    public string BundleDirectory => (_snapshots.Current ?? throw new EngineNotReadyException()).Bundle.Directory;

    /// <summary>The version served here and how far behind the newest it is; null before the first load.</summary>
    public VersionStatus? Status => Volatile.Read(ref _status);

    private IBundleVersionStore Store => _store ?? throw new EngineNotReadyException();

    /// <summary>
    /// Validates and loads the newest published version of a bundle (the folder's manifest.json
    /// when none was published; an older one when the newest fails validation), runs one warm-up
    /// inference over every task, then puts it in service. Throws <see cref="BundleValidationException"/>
    /// when no version can be served.
    /// </summary>
    public async Task LoadAsync(string bundleDirectory, CancellationToken cancellationToken = default)
    {
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            _store = _openStore(bundleDirectory);
            long newest = await _store.FindNewestAsync(0, cancellationToken).ConfigureAwait(false);
            IReadOnlyList<long> stored = await _store.ListAsync(cancellationToken).ConfigureAwait(false);
            VersionStatus? refused = null;
            foreach (long number in stored.Where(n => n <= newest).Reverse().Append(0))
            {
                try
                {
                    await LoadFirstAsync(bundleDirectory, number, cancellationToken).ConfigureAwait(false);
                    SetStatus(newest, refused);
                    return;
                }
                catch (BundleValidationException ex) when (number > 0)
                {
                    LogRefused(_logger, number, ex.Message);
                    refused ??= new VersionStatus(0, "", newest, number, ex.Message, 1);
                }
            }
        }
        finally
        {
            _changes.Release();
        }
    }

    private async Task LoadFirstAsync(string bundleDirectory, long number, CancellationToken cancellationToken)
    {
        // The base keeps its own loader path, so its errors read as they always did.
        ModelBundle bundle = number == 0
            ? await BundleLoader.LoadAsync(bundleDirectory, cancellationToken).ConfigureAwait(false)
            : await LoadVersionAsync(bundleDirectory, number, cancellationToken).ConfigureAwait(false)
              ?? throw new BundleValidationException(Store.NameOf(number), "(file)", "removed while loading");
        PublishedVersion version = await Store.ReadAsync(number, cancellationToken).ConfigureAwait(false)
                                   ?? throw new BundleValidationException(Store.NameOf(number), "(file)", "removed while loading");
        BundleSnapshot loaded = BundleSnapshot.Create(bundle, _sessions);
        try
        {
            await _engine.WarmUpAsync(loaded, [.. loaded.Tasks.Select(t => t.Name)], cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            loaded.Dispose();
            throw;
        }

        _snapshots.Replace(expected: null, loaded);
        _served = version;
        LogLoaded(_logger, loaded.ModelId, number, loaded.Tasks.Count, _sessions.Target, loaded.TrunkFile);
        if (bundle.Manifest.Trunk.Int8Matmuls && _sessions.Target == ExecutionTarget.Cuda && !loaded.UsesFloat16Graphs)
        {
            LogInt8TrunkOnCuda(_logger, loaded.ModelId);
        }
    }

    private async Task<ModelBundle?> LoadVersionAsync(string bundleDirectory, long number, CancellationToken cancellationToken) =>
        await Store.ReadAsync(number, cancellationToken).ConfigureAwait(false) is { } version
            ? await ValidateVersionAsync(bundleDirectory, version, cancellationToken).ConfigureAwait(false)
            : null;

    /// <summary>Validates a published version; its manifest's errors name its own file (not manifest.json).</summary>
    private async Task<ModelBundle> ValidateVersionAsync(string bundleDirectory, PublishedVersion version, CancellationToken cancellationToken)
    {
        string file = Store.NameOf(version.Number);
        try
        {
            return await BundleLoader.LoadAsync(bundleDirectory, version.Manifest, file, cancellationToken).ConfigureAwait(false);
        }
        catch (BundleValidationException ex) when (ex.File == BundleLoader.ManifestFileName && file != ex.File)
        {
            throw new BundleValidationException(file, ex.Field, ex.Problem, ex);
        }
    }

    /// <summary>
    /// Serves the newest published version when it is newer than the one served (the replica's
    /// poll, <see cref="RegistryOptions.PollInterval"/>). A version that fails validation is not
    /// served and is reported (log, <see cref="Status"/>); the old one keeps serving.
    /// </summary>
    public async Task<VersionStatus> FollowAsync(CancellationToken cancellationToken = default)
    {
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CatchUpAsync(cancellationToken).ConfigureAwait(false);
            return Status!;
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>Under the change lock: follows to the newest version if it can be served; returns the newest number.</summary>
    private async Task<long> CatchUpAsync(CancellationToken cancellationToken)
    {
        VersionStatus status = Status ?? throw new EngineNotReadyException();
        long newest = await Store.FindNewestAsync(Math.Max(status.Newest, _served!.Number), cancellationToken).ConfigureAwait(false);
        if (newest <= _served.Number || newest == status.Refused)
        {
            SetStatus(newest, status);
            return newest;
        }

        try
        {
            await ServeVersionAsync(newest, cancellationToken).ConfigureAwait(false);
            SetStatus(newest, status);
        }
        catch (Exception ex) when (ex is BundleValidationException or Microsoft.ML.OnnxRuntime.OnnxRuntimeException)
        {
            LogRefused(_logger, newest, ex.Message);
            SetStatus(newest, status with { Refused = newest, RefusedReason = ex.Message, Refusals = status.Refusals + 1 });
        }
        catch (IOException ex)
        {
            LogFollowFailed(_logger, newest, ex.Message); // transient (a shared volume): tried again at the next poll
        }

        return newest;
    }

    private async Task ServeVersionAsync(long number, CancellationToken cancellationToken)
    {
        BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
        if (await Store.ReadAsync(number, cancellationToken).ConfigureAwait(false) is not { } version)
        {
            return; // collected meanwhile: a newer one exists, found at the next poll
        }

        ModelBundle bundle = await ValidateVersionAsync(current.Bundle.Directory, version, cancellationToken).ConfigureAwait(false);
        BundleSnapshot snapshot = BundleSnapshot.Derive(current, bundle, _sessions);
        try
        {
            // Only the sessions this version loaded: the shared ones serve already.
            await _engine.WarmUpAsync(snapshot, [.. snapshot.Tasks.Where(t => !snapshot.SharesHeadWith(current, t.Name)).Select(t => t.Name)], cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }

        _snapshots.Replace(current, snapshot);
        LogFollowed(_logger, number, snapshot.ModelId, _served!.Number, current.ModelId);
        _served = version;
    }

    private void SetStatus(long newest, VersionStatus? previous)
    {
        BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
        // A refusal stays reported until a newer version is published (or one is served).
        bool stillRefused = previous?.Refused is { } r && r == newest && r > _served!.Number;
        Volatile.Write(ref _status, new VersionStatus(_served!.Number, current.ModelId, newest,
            stillRefused ? previous!.Refused : null, stillRefused ? previous!.RefusedReason : null, previous?.Refusals ?? 0));
    }

    public void Dispose() => _changes.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle {Model} (version {Number}) loaded and warmed up: {TaskCount} tasks on {Target}, trunk {Trunk}")]
    private static partial void LogLoaded(ILogger logger, string model, long number, int taskCount, ExecutionTarget target, string trunk);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Bundle {Model} serves its int8 trunk (trunk.int8Matmuls) on CUDA: ONNX Runtime's CUDA provider has no kernels for its integer matmuls, so they run on the CPU between copies. Add a float16 trunk for CUDA with `mtbert bundle add-cuda-trunk` (or set Inference:Precision to Auto)")]
    private static partial void LogInt8TrunkOnCuda(ILogger logger, string model);

    [LoggerMessage(Level = LogLevel.Error, Message = "Bundle version {Number} is not served (the version in service keeps serving): {Problem}")]
    private static partial void LogRefused(ILogger logger, long number, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Bundle version {Number} could not be read, trying again at the next poll: {Problem}")]
    private static partial void LogFollowFailed(ILogger logger, long number, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving bundle version {Number} ({Model}), published by another replica; was version {Previous} ({PreviousModel})")]
    private static partial void LogFollowed(ILogger logger, long number, string model, long previous, string previousModel);
}
