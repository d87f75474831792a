using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Engine;

/// <summary>What an admin change did.</summary>
public sealed record TaskChangeResult(string Model, string Action, string Task, int? Version, int? PreviousVersion, string? HeadFile, string? HeadSha256);

/// <summary>What <c>ReloadAsync</c> changed, by task name.</summary>
public sealed record ReloadResult(string Model, IReadOnlyList<string> Added, IReadOnlyList<string> Replaced, IReadOnlyList<string> Removed, IReadOnlyList<string> Unchanged);

/// <summary>No task of that name is loaded.</summary>
public sealed class TaskNotFoundException(string task) : Exception($"no task '{task}' is loaded")
{
    public string Task { get; } = task;
}

/// <summary>The change conflicts with what is loaded (e.g. a replacement whose version is not newer).</summary>
public sealed class TaskConflictException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

// Hot task registry: add, replace, remove and reload while serving. Changes are serialized; each
// builds a new snapshot that shares every unchanged session with the one in service, validates and
// warms up what is new, rewrites manifest.json atomically, and only then swaps the snapshot. The
// old snapshot is retired: requests that leased it finish on it, and its sessions that the new
// snapshot does not share are disposed after its last lease is released. Any failure before the
// swap leaves the old snapshot serving and the manifest on disk untouched.
public sealed partial class MultiTaskEngine
{
    private readonly SemaphoreSlim _changes = new(1, 1);

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
        string? storedHead = null;
        try
        {
            LoadedBundle current = Current ?? throw new EngineNotReadyException();
            ModelBundle bundle = current.Bundle;
            entry = (JsonObject)entry.DeepClone();
            string name = entry["name"] is JsonValue n && n.TryGetValue(out string? s) ? s : "";
            BundleLoader.RequireTaskName(name, "name");

            int existingIndex = IndexOf(bundle, name);
            int index = existingIndex >= 0 ? existingIndex : bundle.Manifest.Tasks.Count;
            string at = $"tasks[{index}]";
            if (entry["head"] is not JsonObject head)
            {
                throw new BundleValidationException(BundleLoader.ManifestFileName, $"{at}.head", "missing or not an object");
            }

            if (headContent is not null)
            {
                int version = entry["version"] is JsonValue v && v.TryGetValue(out int vv) ? vv : 1;
                (string relative, string sha, bool created) = await StoreHeadAsync(bundle.Directory, name, version, headContent, cancellationToken).ConfigureAwait(false);
                storedHead = created ? relative : null; // an identical file already there may be in use: never delete it
                if (head["sha256"] is JsonValue given && given.TryGetValue(out string? givenSha) && !string.Equals(givenSha, sha, StringComparison.OrdinalIgnoreCase))
                {
                    throw new BundleValidationException(relative, $"{at}.head.sha256", $"SHA-256 mismatch: entry says {givenSha}, uploaded file has {sha}");
                }

                head["file"] = relative;
                head["sha256"] = sha;
            }
            else if (head["sha256"] is null)
            {
                string file = head["file"] is JsonValue f && f.TryGetValue(out string? fs) ? fs : "";
                head["sha256"] = await Sha256InsideAsync(bundle.Directory, file, $"{at}.head.file", cancellationToken).ConfigureAwait(false);
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

            string bundleVersion = ManifestFile.BumpVersion(bundle.Manifest.Version);
            ModelBundle next = bundle with { Manifest = bundle.Manifest with { Tasks = manifests, Version = bundleVersion }, Tasks = definitions };
            await PublishAsync(current, next, [name], disk =>
            {
                ManifestFile.UpsertTask(disk, entry);
                disk["version"] = bundleVersion;
            }, cancellationToken).ConfigureAwait(false);
            LogTaskChanged(_logger, previous is null ? "added" : "replaced", name, task.Version, previous?.Version);
            storedHead = null; // in service now
            return new TaskChangeResult(next.ModelId, previous is null ? "added" : "replaced", name, task.Version, previous?.Version, task.Head.File, task.Head.Sha256);
        }
        finally
        {
            if (storedHead is not null)
            {
                TryDelete(Path.Combine(Current?.Bundle.Directory ?? ".", storedHead));
            }

            _changes.Release();
        }
    }

    /// <summary>Removes a task; its head file stays on disk.</summary>
    public async Task<TaskChangeResult> RemoveTaskAsync(string name, CancellationToken cancellationToken = default)
    {
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            LoadedBundle current = Current ?? throw new EngineNotReadyException();
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
            LoadedBundle current = Current ?? throw new EngineNotReadyException();
            ModelBundle next = await BundleLoader.LoadAsync(current.Bundle.Directory, cancellationToken).ConfigureAwait(false);
            LoadedBundle snapshot = LoadedBundle.Derive(current, next, _sessions);
            try
            {
                await WarmUpAsync(snapshot, [.. next.Tasks.Select(t => t.Name)], cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                snapshot.Dispose();
                throw;
            }

            Swap(current, snapshot);
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
    private async Task PublishAsync(LoadedBundle current, ModelBundle next, IReadOnlyList<string> warmUp, Action<JsonObject> editManifest, CancellationToken cancellationToken)
    {
        LoadedBundle snapshot = LoadedBundle.Derive(current, next, _sessions);
        try
        {
            await WarmUpAsync(snapshot, warmUp, cancellationToken).ConfigureAwait(false);
            JsonObject disk = await ManifestFile.ReadAsync(next.Directory, cancellationToken).ConfigureAwait(false);
            editManifest(disk);
            await ManifestFile.WriteAtomicallyAsync(next.Directory, disk, CancellationToken.None).ConfigureAwait(false);
        }
        catch
        {
            snapshot.Dispose();
            throw;
        }

        Swap(current, snapshot);
    }

    private void Swap(LoadedBundle current, LoadedBundle snapshot)
    {
        LoadedBundle? replaced = Interlocked.CompareExchange(ref _current, snapshot, current);
        if (!ReferenceEquals(replaced, current))
        {
            snapshot.Dispose();
            throw new InvalidOperationException("The bundle in service changed during an admin change.");
        }

        current.Dispose(); // retire: its sessions go once in-flight requests released it
        EngineMetrics.RecordSnapshot(snapshot);
    }

    private static Task WarmUpAsync(LoadedBundle bundle, IReadOnlyList<string> tasks, CancellationToken cancellationToken) =>
        tasks.Count == 0 ? Task.CompletedTask : ClassifyAsync(bundle, [new ClassifyInput("warm up", "warm up")], tasks, cancellationToken);

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

    /// <summary>Writes an uploaded head to heads/&lt;name&gt;-v&lt;version&gt;-&lt;sha12&gt;.onnx (temp file, then rename).</summary>
    private static async Task<(string Relative, string Sha256, bool Created)> StoreHeadAsync(string directory, string name, int version, Stream content, CancellationToken cancellationToken)
    {
        string temp = BundleTempFiles.NewUploadPath(directory);
        string heads = Path.GetDirectoryName(temp)!;
        try
        {
            string sha;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                await file.FlushAsync(cancellationToken).ConfigureAwait(false);
                file.Flush(flushToDisk: true);
                file.Position = 0;
                sha = Convert.ToHexStringLower(await SHA256.HashDataAsync(file, cancellationToken).ConfigureAwait(false));
            }

            string relative = $"heads/{name}-v{version}-{sha[..12]}.onnx";
            string target = Path.Combine(heads, Path.GetFileName(relative));
            if (File.Exists(target))
            {
                return (relative, sha, false); // same name = same content (SHA-256 prefix)
            }

            File.Move(temp, target);
            return (relative, sha, true);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    private static async Task<string> Sha256InsideAsync(string directory, string relativePath, string field, CancellationToken cancellationToken)
    {
        string full = BundleLoader.ResolveExistingFile(directory, relativePath, field);
        await using FileStream stream = File.OpenRead(full);
        return Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, cancellationToken).ConfigureAwait(false));
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path))
            {
                File.Delete(path);
            }
        }
        catch (IOException)
        {
            // Best effort: a stray file in heads/ does not affect serving.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} {Action}: version {Version} (was {PreviousVersion})")]
    private static partial void LogTaskChanged(ILogger logger, string action, string task, int? version, int? previousVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle {Model} reloaded: {Added} added, {Replaced} replaced, {Removed} removed, {Unchanged} unchanged")]
    private static partial void LogReloaded(ILogger logger, string model, int added, int replaced, int removed, int unchanged);
}
