using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// What is in service and every change to it: the start-up load, then add, replace, remove and
/// reload while serving. The engine only runs what this puts in the <see cref="SnapshotHolder"/>.
/// </summary>
/// <remarks>
/// Changes are serialized; each builds a new snapshot that shares every unchanged session with the
/// one in service, validates and warms up what is new, rewrites manifest.json atomically, and only
/// then swaps the snapshot. The old snapshot is retired: requests that leased it finish on it, and
/// its sessions that the new snapshot does not share are disposed after its last lease is released.
/// Any failure before the swap leaves the old snapshot serving and the manifest on disk untouched.
/// </remarks>
public sealed partial class BundleRegistry : IDisposable
{
    private readonly OnnxSessionFactory _sessions;
    private readonly SnapshotHolder _snapshots;
    private readonly MultiTaskEngine _engine;
    private readonly ILogger<BundleRegistry> _logger;
    private readonly SemaphoreSlim _changes = new(1, 1);

    public BundleRegistry(OnnxSessionFactory sessions, SnapshotHolder snapshots, MultiTaskEngine engine, ILogger<BundleRegistry> logger)
    {
        ArgumentNullException.ThrowIfNull(sessions);
        ArgumentNullException.ThrowIfNull(snapshots);
        ArgumentNullException.ThrowIfNull(engine);
        _sessions = sessions;
        _snapshots = snapshots;
        _engine = engine;
        _logger = logger;
    }

    /// <summary>The folder of the bundle in service (admin uploads are spooled into it).</summary>
    /// <exception cref="EngineNotReadyException">No bundle is in service yet.</exception>
    public string BundleDirectory => (_snapshots.Current ?? throw new EngineNotReadyException()).Bundle.Directory;

    /// <summary>
    /// Validates and loads a bundle, runs one warm-up inference over every task, then puts it in
    /// service. Throws <see cref="BundleValidationException"/> when the bundle cannot be served.
    /// </summary>
    public async Task LoadAsync(string bundleDirectory, CancellationToken cancellationToken = default)
    {
        ModelBundle bundle = await BundleLoader.LoadAsync(bundleDirectory, cancellationToken).ConfigureAwait(false);
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

        // The first load only: later changes swap snapshots under the change lock.
        _snapshots.Replace(expected: null, loaded);
        LogLoaded(_logger, loaded.ModelId, loaded.Tasks.Count, _sessions.Target, loaded.TrunkFile);
        if (bundle.Manifest.Trunk.Int8Matmuls && _sessions.Target == ExecutionTarget.Cuda && !loaded.UsesFloat16Graphs)
        {
            LogInt8TrunkOnCuda(_logger, loaded.ModelId);
        }
    }

    /// <summary>
    /// Adds a task or replaces it with a newer version. <paramref name="entry"/> is a manifest task
    /// entry (docs/bundle-format.md); its <c>head.sha256</c> may be omitted (computed here). With
    /// <paramref name="headContent"/> the head ONNX is stored in the bundle's <c>heads/</c> folder
    /// and <c>head.file</c> is set to it; without, <c>head.file</c> must name a file inside the bundle.
    /// </summary>
    public async Task<TaskChangeResult> AddOrReplaceTaskAsync(JsonObject entry, Stream? headContent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        string? storedHead = null; // full path of a head this change stored, until it is in service
        try
        {
            BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
            ModelBundle bundle = current.Bundle;
            entry = (JsonObject)entry.DeepClone();
            string name = entry["name"] is JsonValue n && n.TryGetValue(out string? s) ? s : "";
            // Before anything else: an uploaded head is stored under a file name made of the task name.
            BundleLoader.RequireTaskName(name, "name");

            int existingIndex = IndexOf(bundle, name);
            int index = existingIndex >= 0 ? existingIndex : bundle.Manifest.Tasks.Count;
            string at = $"tasks[{index}]";
            if (ExamplesTaskBuilder.Wants(entry))
            {
                // A task defined by examples: no head of its own; embedded here, centroids stored in the bundle.
                await ExamplesTaskBuilder.BuildAsync(entry, at, current, _engine, cancellationToken).ConfigureAwait(false);
            }

            if (entry["head"] is not JsonObject head)
            {
                throw new BundleValidationException(BundleLoader.ManifestFileName, $"{at}.head", "missing or not an object");
            }

            if (headContent is not null)
            {
                int version = entry["version"] is JsonValue v && v.TryGetValue(out int vv) ? vv : 1;
                StoredHead stored = await HeadFileStore.StoreAsync(bundle.Directory, name, version, headContent, cancellationToken).ConfigureAwait(false);
                // An identical file already there may be in use: never delete it.
                storedHead = stored.Created ? stored.FullPath : null;
                if (head["sha256"] is JsonValue given && given.TryGetValue(out string? givenSha) && !string.Equals(givenSha, stored.Sha256, StringComparison.OrdinalIgnoreCase))
                {
                    throw new BundleValidationException(stored.RelativePath, $"{at}.head.sha256", $"SHA-256 mismatch: entry says {givenSha}, uploaded file has {stored.Sha256}");
                }

                head["file"] = stored.RelativePath;
                head["sha256"] = stored.Sha256;
            }
            else if (head["sha256"] is null)
            {
                string file = head["file"] is JsonValue f && f.TryGetValue(out string? fs) ? fs : "";
                string path = BundleFiles.ResolveExistingFile(bundle.Directory, file, $"{at}.head.file");
                head["sha256"] = await BundleFiles.Sha256Async(path, cancellationToken).ConfigureAwait(false);
            }

            TaskManifest task = Deserialize(entry, at);
            TaskDefinition? previous = existingIndex >= 0 ? bundle.Tasks[existingIndex] : null;
            if (previous is not null && task.Version <= previous.Version)
            {
                throw new TaskConflictException($"{at}.version",
                    $"task '{name}' is loaded at version {previous.Version}; a replacement needs a higher version, got {task.Version}");
            }

            TaskDefinition definition = await BundleLoader.ValidateTaskAsync(bundle, task, index, cancellationToken).ConfigureAwait(false);
            List<TaskManifest> manifests = [.. bundle.Manifest.Tasks];
            List<TaskDefinition> definitions = [.. bundle.Tasks];
            if (existingIndex >= 0)
            {
                manifests[existingIndex] = task;
                definitions[existingIndex] = definition;
            }
            else
            {
                manifests.Add(task);
                definitions.Add(definition);
            }

            PairSource.RequireEmbeddingTasks(definitions);

            string bundleVersion = ManifestFile.BumpVersion(bundle.Manifest.Version);
            ModelBundle next = bundle with { Manifest = bundle.Manifest with { Tasks = manifests, Version = bundleVersion }, Tasks = definitions };
            await PublishAsync(current, next, [name], disk =>
            {
                ManifestFile.UpsertTask(disk, entry);
                disk["version"] = bundleVersion;
            }, cancellationToken).ConfigureAwait(false);
            string action = previous is null ? "added" : "replaced";
            LogTaskChanged(_logger, action, name, task.Version, previous?.Version);
            storedHead = null; // in service now
            return new TaskChangeResult(next.ModelId, action, name, task.Version, previous?.Version, task.Head.File, task.Head.Sha256);
        }
        finally
        {
            if (storedHead is not null)
            {
                HeadFileStore.TryDelete(storedHead);
            }

            _changes.Release();
        }
    }

    /// <summary>Removes a task; its head file is deleted once the last request on the old snapshot finished (unless another task reads it).</summary>
    public async Task<TaskChangeResult> RemoveTaskAsync(string name, CancellationToken cancellationToken = default)
    {
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
            ModelBundle bundle = current.Bundle;
            int index = IndexOf(bundle, name);
            if (index < 0)
            {
                throw new TaskNotFoundException(name);
            }

            TaskDefinition removed = bundle.Tasks[index];
            List<TaskManifest> manifests = [.. bundle.Manifest.Tasks];
            List<TaskDefinition> definitions = [.. bundle.Tasks];
            manifests.RemoveAt(index);
            definitions.RemoveAt(index);
            if (definitions.Select(t => PairSource.MissingEmbedding(t, definitions)).FirstOrDefault(p => p is not null) is { } reader)
            {
                throw new TaskConflictException("name", $"task '{name}' cannot be removed: {reader}; remove that task first or serve it from the joint pass");
            }

            string bundleVersion = ManifestFile.BumpVersion(bundle.Manifest.Version);
            ModelBundle next = bundle with { Manifest = bundle.Manifest with { Tasks = manifests, Version = bundleVersion }, Tasks = definitions };
            await PublishAsync(current, next, [], disk =>
            {
                ManifestFile.RemoveTask(disk, name);
                disk["version"] = bundleVersion;
            }, cancellationToken).ConfigureAwait(false);
            LogTaskChanged(_logger, "removed", name, null, removed.Version);
            return new TaskChangeResult(next.ModelId, "removed", name, null, removed.Version, null, null);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>
    /// Re-reads and validates manifest.json, then serves it: unchanged heads (and the trunk, when its
    /// section is unchanged) keep their sessions; new or changed ones are loaded and warmed up.
    /// </summary>
    public async Task<ReloadResult> ReloadAsync(CancellationToken cancellationToken = default)
    {
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
            ModelBundle next = await BundleLoader.LoadAsync(current.Bundle.Directory, cancellationToken).ConfigureAwait(false);
            BundleSnapshot snapshot = BundleSnapshot.Derive(current, next, _sessions);
            try
            {
                await _engine.WarmUpAsync(snapshot, [.. next.Tasks.Select(t => t.Name)], cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                snapshot.Dispose();
                throw;
            }

            DeleteUnusedHeadFilesWhenDrained(current, snapshot);
            _snapshots.Replace(current, snapshot);
            var before = current.Tasks.ToDictionary(t => t.Name, StringComparer.Ordinal);
            var after = next.Tasks.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
            List<string> added = [], replaced = [], unchanged = [];
            foreach (TaskDefinition task in next.Tasks)
            {
                (before.ContainsKey(task.Name) ? snapshot.SharesHeadWith(current, task.Name) ? unchanged : replaced : added).Add(task.Name);
            }

            List<string> removed = [.. before.Keys.Where(k => !after.Contains(k))];
            LogReloaded(_logger, snapshot.ModelId, added.Count, replaced.Count, removed.Count, unchanged.Count);
            return new ReloadResult(snapshot.ModelId, added, replaced, removed, unchanged);
        }
        finally
        {
            _changes.Release();
        }
    }

    /// <summary>Builds and warms the new snapshot, rewrites the manifest atomically, then swaps.</summary>
    private async Task PublishAsync(BundleSnapshot current, ModelBundle next, IReadOnlyList<string> warmUp, Action<JsonObject> editManifest, CancellationToken cancellationToken)
    {
        BundleSnapshot snapshot = BundleSnapshot.Derive(current, next, _sessions);
        try
        {
            await _engine.WarmUpAsync(snapshot, warmUp, cancellationToken).ConfigureAwait(false);
            JsonObject disk = await ManifestFile.ReadAsync(next.Directory, cancellationToken).ConfigureAwait(false);
            editManifest(disk);
            await ManifestFile.WriteAtomicallyAsync(next.Directory, disk, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }

        DeleteUnusedHeadFilesWhenDrained(current, snapshot);
        _snapshots.Replace(current, snapshot);
    }

    /// <summary>
    /// The head files <paramref name="current"/> serves that <paramref name="next"/> does not read
    /// are deleted once their sessions close, i.e. after the last request on the old snapshot (so
    /// repeated uploads do not fill the disk, and no running session loses its file).
    /// </summary>
    private static void DeleteUnusedHeadFilesWhenDrained(BundleSnapshot current, BundleSnapshot next)
    {
        HashSet<string> read = next.Tasks.SelectMany(GraphFiles).ToHashSet(StringComparer.Ordinal);
        foreach (TaskDefinition task in current.Tasks.Where(t => !next.SharesHeadWith(current, t.Name)))
        {
            string[] unused = [.. GraphFiles(task).Where(f => !read.Contains(f))];
            if (unused.Length > 0)
            {
                current.Heads[task.Name].DeleteFilesOnDispose(unused);
            }
        }
    }

    private static IEnumerable<string> GraphFiles(TaskDefinition task) =>
        task.Head.FloatVariant is { } variant ? [task.Head.FullPath, variant.FullPath] : [task.Head.FullPath];

    private static int IndexOf(ModelBundle bundle, string name)
    {
        for (int i = 0; i < bundle.Tasks.Count; i++)
        {
            if (string.Equals(bundle.Tasks[i].Name, name, StringComparison.Ordinal))
            {
                return i;
            }
        }

        return -1;
    }

    private static TaskManifest Deserialize(JsonObject entry, string at)
    {
        try
        {
            return entry.Deserialize(BundleManifestJsonContext.Default.TaskManifest)
                   ?? throw new BundleValidationException(BundleLoader.ManifestFileName, at, "the task entry is JSON null");
        }
        catch (JsonException ex)
        {
            string path = ex.Path is null or "$" ? "" : ex.Path.TrimStart('$');
            throw new BundleValidationException(BundleLoader.ManifestFileName, $"{at}{path}", $"invalid task entry: {ex.Message}", ex);
        }
    }

    public void Dispose() => _changes.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle {Model} loaded and warmed up: {TaskCount} tasks on {Target}, trunk {Trunk}")]
    private static partial void LogLoaded(ILogger logger, string model, int taskCount, ExecutionTarget target, string trunk);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Bundle {Model} serves its int8 trunk (trunk.int8Matmuls) on CUDA: ONNX Runtime's CUDA provider has no kernels for its integer matmuls, so they run on the CPU between copies. Add a float16 trunk for CUDA with `mtbert bundle add-cuda-trunk` (or set Inference:Precision to Auto)")]
    private static partial void LogInt8TrunkOnCuda(ILogger logger, string model);

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} {Action}: version {Version} (was {PreviousVersion})")]
    private static partial void LogTaskChanged(ILogger logger, string action, string task, int? version, int? previousVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle {Model} reloaded: {Added} added, {Replaced} replaced, {Removed} removed, {Unchanged} unchanged")]
    private static partial void LogReloaded(ILogger logger, string model, int added, int replaced, int removed, int unchanged);
}
