using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Core.Registry;

/// <summary>The changes the admin API makes, each an operation that <see cref="PublishAsync"/> applies on the newest version.</summary>
public sealed partial class BundleRegistry
{
    /// <summary>
    /// Adds a task or replaces it with a newer version. <paramref name="entry"/> is a manifest task
    /// entry (docs/bundle-format.md); its <c>head.sha256</c> may be omitted (computed here). With
    /// <paramref name="headContent"/> the head ONNX is stored in the bundle's <c>heads/</c> folder
    /// and <c>head.file</c> is set to it; without, <c>head.file</c> must name a file inside the bundle.
    /// </summary>
    public async Task<TaskChangeResult> AddOrReplaceTaskAsync(JsonObject entry, Stream? headContent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(entry);
        PreparedTask? prepared = null;
        TaskDefinition? previous = null;
        bool published = false;
        try
        {
            (long number, ModelBundle bundle) = await PublishAsync(async (current, manifest, ct) =>
            {
                // Parsed, validated and stored once; applied to whichever version is the newest.
                prepared ??= await PreparedTask.PrepareAsync(entry, headContent, current, _engine, ct).ConfigureAwait(false);
                (PlannedVersion plan, previous) = await PlanUpsertAsync(prepared, current.Bundle, manifest, ct).ConfigureAwait(false);
                return plan;
            }, needsNewest: true, cancellationToken).ConfigureAwait(false);
            published = true;
            TaskManifest task = bundle.Manifest.Tasks.First(t => t.Name == prepared!.Name);
            string action = previous is null ? "added" : "replaced";
            LogTaskChanged(_logger, action, prepared!.Name, task.Version, previous?.Version);
            return new TaskChangeResult(bundle.ModelId, action, prepared.Name, task.Version, previous?.Version, task.Head.File, task.Head.Sha256, number);
        }
        finally
        {
            if (!published && prepared?.StoredHead is { } stored && !await IsReadByNewestVersionAsync(prepared.Entry).ConfigureAwait(false))
            {
                HeadFileStore.TryDelete(stored); // an upload that went into no version
            }
        }
    }

    /// <summary>
    /// Whether the newest published version reads the head file of <paramref name="entry"/>. The same
    /// upload sent twice at once (a double submit, through one replica or two) is stored by one request
    /// and found there by the other; when the finder publishes and the creator is refused for it, the
    /// creator must leave the file. On any doubt the file stays: a stray file does not change what is served.
    /// </summary>
    private async Task<bool> IsReadByNewestVersionAsync(JsonObject entry)
    {
        try
        {
            string? file = (entry["head"]?["file"] as JsonValue)?.GetValue<string>();
            long newest = await Store.FindNewestAsync(0, CancellationToken.None).ConfigureAwait(false);
            PublishedVersion? version = await Store.ReadAsync(newest, CancellationToken.None).ConfigureAwait(false);
            return version is null || (file is not null && VersionCollector.FilesOf(version.Manifest).Contains(file, StringComparer.Ordinal));
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or BundleValidationException or InvalidOperationException or EngineNotReadyException)
        {
            return true;
        }
    }

    /// <summary>The upsert of <paramref name="prepared"/> into <paramref name="basis"/> (the newest version): 409 unless a replacement is newer.</summary>
    private static async Task<(PlannedVersion Plan, TaskDefinition? Previous)> PlanUpsertAsync(
        PreparedTask prepared, ModelBundle basis, JsonObject manifest, CancellationToken cancellationToken)
    {
        int existing = IndexOf(basis, prepared.Name);
        int index = existing >= 0 ? existing : basis.Tasks.Count;
        string at = $"tasks[{index}]";
        TaskManifest task = PreparedTask.Deserialize(prepared.Entry, at);
        TaskDefinition? previous = existing >= 0 ? basis.Tasks[existing] : null;
        if (previous is not null && task.Version <= previous.Version)
        {
            throw new TaskConflictException($"{at}.version",
                $"task '{prepared.Name}' is loaded at version {previous.Version}; a replacement needs a higher version, got {task.Version}");
        }

        if (prepared.StoredHead is { } stored)
        {
            HeadFileStore.Touch(stored); // read by the version about to be published: not collected meanwhile
        }

        TaskDefinition definition = await BundleLoader.ValidateTaskAsync(basis, task, index, cancellationToken).ConfigureAwait(false);
        List<TaskManifest> manifests = [.. basis.Manifest.Tasks];
        List<TaskDefinition> definitions = [.. basis.Tasks];
        if (existing >= 0)
        {
            manifests[existing] = task;
            definitions[existing] = definition;
        }
        else
        {
            manifests.Add(task);
            definitions.Add(definition);
        }

        PairSource.RequireEmbeddingTasks(definitions);
        ManifestFile.UpsertTask(manifest, prepared.Entry);
        ModelBundle next = basis with { Manifest = basis.Manifest with { Tasks = manifests }, Tasks = definitions };
        string change = $"{(previous is null ? "added" : "replaced")} task {prepared.Name} version {task.Version}";
        return (new PlannedVersion(next, manifest, [prepared.Name], change), previous);
    }

    /// <summary>Removes a task (its head file stays while a kept version reads it).</summary>
    public async Task<TaskChangeResult> RemoveTaskAsync(string name, CancellationToken cancellationToken = default)
    {
        TaskDefinition? removed = null;
        (long number, ModelBundle bundle) = await PublishAsync((current, manifest, _) =>
        {
            ModelBundle basis = current.Bundle;
            int index = IndexOf(basis, name);
            if (index < 0)
            {
                throw new TaskNotFoundException(name);
            }

            removed = basis.Tasks[index];
            List<TaskDefinition> remaining = [.. basis.Tasks.Where((_, i) => i != index)];
            if (remaining.Select(t => PairSource.MissingEmbedding(t, remaining)).FirstOrDefault(p => p is not null) is { } reader)
            {
                throw new TaskConflictException("name", $"task '{name}' cannot be removed: {reader}; remove that task first or serve it from the joint pass");
            }

            ManifestFile.RemoveTask(manifest, name);
            ModelBundle next = basis with
            {
                Manifest = basis.Manifest with { Tasks = [.. basis.Manifest.Tasks.Where((_, i) => i != index)] },
                Tasks = remaining,
            };
            return Task.FromResult(new PlannedVersion(next, manifest, [], $"removed task {name}"));
        }, needsNewest: true, cancellationToken).ConfigureAwait(false);
        LogTaskChanged(_logger, "removed", name, null, removed!.Version);
        return new TaskChangeResult(bundle.ModelId, "removed", name, null, removed.Version, null, null, number);
    }

    /// <summary>
    /// Publishes the bundle folder's manifest.json (edited by hand) as the newest version and serves
    /// it: unchanged heads (and the trunk, when its section is unchanged) keep their sessions.
    /// </summary>
    public async Task<ReloadResult> ReloadAsync(CancellationToken cancellationToken = default)
    {
        if (await UnchangedReloadAsync(cancellationToken).ConfigureAwait(false) is { } unchanged)
        {
            return unchanged;
        }

        JsonObject? before = null;
        JsonObject? after = null;
        (_, ModelBundle bundle) = await PublishAsync(async (current, manifest, ct) =>
        {
            before = manifest;
            ModelBundle next = await BundleLoader.LoadAsync(current.Bundle.Directory, ct).ConfigureAwait(false);
            after = await ManifestFile.ReadAsync(current.Bundle.Directory, ct).ConfigureAwait(false);
            return new PlannedVersion(next, after, [.. next.Tasks.Select(t => t.Name)], $"reloaded {BundleLoader.ManifestFileName}");
        }, needsNewest: false, cancellationToken).ConfigureAwait(false);
        ReloadResult result = Compare(bundle.ModelId, before!, after!);
        LogReloaded(_logger, result.Model, result.Added.Count, result.Replaced.Count, result.Removed.Count, result.Unchanged.Count);
        return result;
    }

    /// <summary>
    /// A reload of a manifest.json that says what the served version says (bundle version and
    /// publication record aside) publishes nothing: reload is idempotent. Null when it differs.
    /// </summary>
    private async Task<ReloadResult?> UnchangedReloadAsync(CancellationToken cancellationToken)
    {
        await _changes.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CatchUpAsync(cancellationToken).ConfigureAwait(false);
            BundleSnapshot current = _snapshots.Current ?? throw new EngineNotReadyException();
            JsonObject onDisk = await ManifestFile.ReadAsync(current.Bundle.Directory, cancellationToken).ConfigureAwait(false);
            if (!JsonNode.DeepEquals(Content(onDisk), Content(_served!.Manifest)))
            {
                return null;
            }

            return Compare(current.ModelId, _served.Manifest, _served.Manifest);
        }
        finally
        {
            _changes.Release();
        }
    }

    private static JsonObject Content(JsonObject manifest)
    {
        var content = (JsonObject)manifest.DeepClone();
        content.Remove("version");
        content.Remove("published");
        return content;
    }

    /// <summary>Publishes version <paramref name="number"/>'s tasks again as the newest version (with the next model id).</summary>
    public async Task<RollbackResult> RollbackAsync(long number, CancellationToken cancellationToken = default)
    {
        (long published, ModelBundle bundle) = await PublishAsync(async (current, _, ct) =>
        {
            PublishedVersion earlier = await Store.ReadAsync(number, ct).ConfigureAwait(false) ?? throw new VersionNotFoundException(number);
            JsonObject manifest = (JsonObject)earlier.Manifest.DeepClone();
            ModelBundle next = await ValidateVersionAsync(current.Bundle.Directory, earlier, ct).ConfigureAwait(false);
            return new PlannedVersion(next, manifest, [.. next.Tasks.Select(t => t.Name)], $"rolled back to version {number}");
        }, needsNewest: false, cancellationToken).ConfigureAwait(false);
        return new RollbackResult(bundle.ModelId, published, number);
    }

    /// <summary>The kept versions, newest first (the base, number 0, last).</summary>
    public async Task<VersionHistory> ListVersionsAsync(CancellationToken cancellationToken = default)
    {
        VersionStatus status = Status ?? throw new EngineNotReadyException();
        IReadOnlyList<long> stored = await Store.ListAsync(cancellationToken).ConfigureAwait(false);
        List<VersionInfo> versions = [];
        foreach (long number in stored.Reverse().Append(0))
        {
            try
            {
                if (await Store.ReadAsync(number, cancellationToken).ConfigureAwait(false) is { } version)
                {
                    versions.Add(Describe(version));
                }
            }
            catch (BundleValidationException ex)
            {
                versions.Add(new VersionInfo(number, "(unreadable)", ex.Message, null, [])); // listed, so that it can be seen and rolled back from
            }
        }

        return new VersionHistory(status.Served, Math.Max(status.Newest, stored.Count > 0 ? stored[^1] : 0), versions);
    }

    private static VersionInfo Describe(PublishedVersion version)
    {
        JsonObject m = version.Manifest;
        string model = $"{Text(m["name"])}@{Text(m["version"])}";
        IReadOnlyList<string> tasks = m["tasks"] is JsonArray array
            ? [.. array.OfType<JsonObject>().Select(t => $"{Text(t["name"])}@{t["version"]?.ToJsonString()}")]
            : [];
        return new VersionInfo(version.Number, model, Text(m["published"]?["change"]), Text(m["published"]?["at"]), tasks);
    }

    private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    private static ReloadResult Compare(string model, JsonObject before, JsonObject after)
    {
        Dictionary<string, JsonNode> old = Entries(before);
        Dictionary<string, JsonNode> now = Entries(after);
        List<string> added = [], replaced = [], unchanged = [];
        foreach ((string name, JsonNode entry) in now)
        {
            (old.TryGetValue(name, out JsonNode? was) ? JsonNode.DeepEquals(was, entry) ? unchanged : replaced : added).Add(name);
        }

        return new ReloadResult(model, added, replaced, [.. old.Keys.Where(k => !now.ContainsKey(k))], unchanged);
    }

    private static Dictionary<string, JsonNode> Entries(JsonObject manifest) =>
        (manifest["tasks"] as JsonArray ?? []).OfType<JsonObject>()
            .Where(t => Text(t["name"]) is not null)
            .ToDictionary(t => Text(t["name"])!, t => (JsonNode)t, StringComparer.Ordinal);

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

    [LoggerMessage(Level = LogLevel.Information, Message = "Task {Task} {Action}: version {Version} (was {PreviousVersion})")]
    private static partial void LogTaskChanged(ILogger logger, string action, string task, int? version, int? previousVersion);

    [LoggerMessage(Level = LogLevel.Information, Message = "Bundle {Model} reloaded: {Added} added, {Replaced} replaced, {Removed} removed, {Unchanged} unchanged")]
    private static partial void LogReloaded(ILogger logger, string model, int added, int replaced, int removed, int unchanged);
}
