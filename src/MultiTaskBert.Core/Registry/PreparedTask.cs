using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// A task entry ready to publish: its name checked, an example-defined task embedded, an uploaded
/// head stored under <c>heads/</c> and the entry's <c>head.file</c>/<c>head.sha256</c> set.
/// <paramref name="StoredHead"/>: the full path of a head file this upload created (deleted when no version takes it).
/// </summary>
internal sealed record PreparedTask(string Name, JsonObject Entry, string? StoredHead)
{
    public static async Task<PreparedTask> PrepareAsync(JsonObject entry, Stream? headContent, BundleSnapshot current, MultiTaskEngine engine, CancellationToken cancellationToken)
    {
        ModelBundle bundle = current.Bundle;
        entry = (JsonObject)entry.DeepClone();
        string name = entry["name"] is JsonValue n && n.TryGetValue(out string? s) ? s : "";
        // Before anything else: an uploaded head is stored under a file name made of the task name.
        BundleLoader.RequireTaskName(name, "name");
        int existing = bundle.Tasks.ToList().FindIndex(t => t.Name == name);
        string at = $"tasks[{(existing >= 0 ? existing : bundle.Tasks.Count)}]";
        if (ExamplesTaskBuilder.Wants(entry))
        {
            // A task defined by examples: no head of its own; embedded here, centroids stored in the bundle.
            await ExamplesTaskBuilder.BuildAsync(entry, at, current, engine, cancellationToken).ConfigureAwait(false);
        }

        if (entry["head"] is not JsonObject head)
        {
            throw new BundleValidationException(BundleLoader.ManifestFileName, $"{at}.head", "missing or not an object");
        }

        if (headContent is null)
        {
            await HashNamedFileAsync(bundle, head, at, cancellationToken).ConfigureAwait(false);
            return new PreparedTask(name, entry, null);
        }

        int version = entry["version"] is JsonValue v && v.TryGetValue(out int vv) ? vv : 1;
        StoredHead stored = await HeadFileStore.StoreAsync(bundle.Directory, name, version, headContent, cancellationToken).ConfigureAwait(false);
        // An identical file already there may be read by a version: never delete it.
        string? created = stored.Created ? stored.FullPath : null;
        if (head["sha256"] is JsonValue given && given.TryGetValue(out string? givenSha) && !string.Equals(givenSha, stored.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            if (created is not null)
            {
                HeadFileStore.TryDelete(created);
            }

            throw new BundleValidationException(stored.RelativePath, $"{at}.head.sha256", $"SHA-256 mismatch: entry says {givenSha}, uploaded file has {stored.Sha256}");
        }

        head["file"] = stored.RelativePath;
        head["sha256"] = stored.Sha256;
        return new PreparedTask(name, entry, created);
    }

    /// <summary>An entry naming a file inside the bundle: its SHA-256 computed when the entry leaves it out.</summary>
    private static async Task HashNamedFileAsync(ModelBundle bundle, JsonObject head, string at, CancellationToken cancellationToken)
    {
        if (head["sha256"] is null)
        {
            string file = head["file"] is JsonValue f && f.TryGetValue(out string? fs) ? fs : "";
            string path = BundleFiles.ResolveExistingFile(bundle.Directory, file, $"{at}.head.file");
            head["sha256"] = await BundleFiles.Sha256Async(path, cancellationToken).ConfigureAwait(false);
        }
    }

    public static TaskManifest Deserialize(JsonObject entry, string at)
    {
        try
        {
            return entry.Deserialize(BundleManifestJsonContext.Default.TaskManifest)
                   ?? throw new BundleValidationException(BundleLoader.ManifestFileName, at, "the task entry is JSON null");
        }
        catch (JsonException ex)
        {
            string field = JsonErrorField.Of(ex, "");
            throw new BundleValidationException(BundleLoader.ManifestFileName, field.Length == 0 ? at : $"{at}.{field}", $"invalid task entry: {JsonErrorField.MessageOf(ex)}", ex);
        }
    }
}
