using System.Text.Json.Nodes;

namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// Reads and edits a manifest as a JSON tree (members this service does not model are kept): the
/// registry applies a change to the newest published version's tree and publishes the result as a
/// new version (<c>Registry/FolderVersionStore</c>); <c>manifest.json</c> itself is never rewritten.
/// </summary>
public static class ManifestFile
{
    public static async Task<JsonObject> ReadAsync(string bundleDirectory, CancellationToken cancellationToken = default)
    {
        string path = Path.Combine(bundleDirectory, BundleLoader.ManifestFileName);
        await using FileStream stream = File.OpenRead(path);
        JsonNode? node = await JsonNode.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
        return node as JsonObject ?? throw new BundleValidationException(BundleLoader.ManifestFileName, "(root)", "the manifest is not a JSON object");
    }

    /// <summary>
    /// The bundle version after a change of its heads: its last number + 1 (1.4.1 → 1.4.2, 3 → 4),
    /// ".1" appended when it has none; the toolkit's <c>bundle add/replace/remove</c> bump the same way.
    /// Answers name the bundle version, so a different set of heads never reports the old one.
    /// </summary>
    public static string BumpVersion(string version)
    {
        ArgumentNullException.ThrowIfNull(version);
        int end = version.Length;
        while (end > 0 && !char.IsAsciiDigit(version[end - 1]))
        {
            end--;
        }

        if (end == 0)
        {
            return version + ".1";
        }

        int start = end;
        while (start > 0 && char.IsAsciiDigit(version[start - 1]))
        {
            start--;
        }

        string number = (System.Numerics.BigInteger.Parse(version[start..end], System.Globalization.CultureInfo.InvariantCulture) + 1)
            .ToString(System.Globalization.CultureInfo.InvariantCulture);
        return string.Concat(version.AsSpan(0, start), number, version.AsSpan(end));
    }

    /// <summary>Replaces the task entry named like <paramref name="entry"/>, or appends it.</summary>
    public static void UpsertTask(JsonObject manifest, JsonObject entry)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentNullException.ThrowIfNull(entry);
        JsonArray tasks = Tasks(manifest);
        string? name = entry["name"]?.GetValue<string>();
        int index = IndexOf(tasks, name);
        JsonNode copy = entry.DeepClone();
        if (index >= 0)
        {
            tasks[index] = copy;
        }
        else
        {
            tasks.Add(copy);
        }
    }

    /// <summary>Removes the task entry named <paramref name="name"/>; false when there is none.</summary>
    public static bool RemoveTask(JsonObject manifest, string name)
    {
        JsonArray tasks = Tasks(manifest);
        int index = IndexOf(tasks, name);
        if (index < 0)
        {
            return false;
        }

        tasks.RemoveAt(index);
        return true;
    }

    private static JsonArray Tasks(JsonObject manifest) =>
        manifest["tasks"] as JsonArray ?? throw new BundleValidationException(BundleLoader.ManifestFileName, "tasks", "not a JSON array");

    private static int IndexOf(JsonArray tasks, string? name)
    {
        for (int i = 0; i < tasks.Count; i++)
        {
            if (tasks[i] is JsonObject task && task["name"] is JsonValue value && value.TryGetValue(out string? n) && n == name)
            {
                return i;
            }
        }

        return -1;
    }
}
