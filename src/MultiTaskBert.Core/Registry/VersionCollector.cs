using System.Text.Json.Nodes;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// Garbage collection after a publish: version files older than the newest <c>keep</c> are deleted,
/// and with them the head (and centroid) files that only they read. Never deleted: the base
/// manifest.json and its files, what a kept version reads, what the snapshot going into service
/// reads; a file the retiring snapshot still runs on goes with its last request.
/// </summary>
internal static class VersionCollector
{
    /// <summary>Files only a version written here can add (the base's own files are never candidates).</summary>
    private static readonly string[] CollectedFolders = ["heads/", "examples/"];

    public static async Task<int> CollectAsync(
        IBundleVersionStore store, string bundleDirectory, long newest, RegistryOptions options, BundleSnapshot retiring, BundleSnapshot next, CancellationToken cancellationToken)
    {
        IReadOnlyList<long> stored = await store.ListAsync(cancellationToken).ConfigureAwait(false);
        long[] dropped = [.. stored.Where(n => n <= newest - options.KeepVersions)];
        if (dropped.Length == 0)
        {
            return 0;
        }

        HashSet<string> candidates = new(StringComparer.Ordinal);
        foreach (long number in dropped)
        {
            if (await store.ReadAsync(number, cancellationToken).ConfigureAwait(false) is { } version)
            {
                candidates.UnionWith(FilesOf(version.Manifest));
            }

            await store.DeleteAsync(number, cancellationToken).ConfigureAwait(false);
        }

        foreach (long number in stored.Where(n => n > newest - options.KeepVersions).Append(0))
        {
            if (await store.ReadAsync(number, cancellationToken).ConfigureAwait(false) is { } version)
            {
                candidates.ExceptWith(FilesOf(version.Manifest));
            }
        }

        candidates.ExceptWith(next.Tasks.SelectMany(t => GraphPaths(bundleDirectory, t)).Select(p => Path.GetRelativePath(bundleDirectory, p).Replace('\\', '/')));
        DeleteWhenUnused(bundleDirectory, candidates, retiring, DateTime.UtcNow - options.CollectGrace);
        return dropped.Length;
    }

    /// <summary>The files a version's manifest reads that garbage collection may delete (relative paths).</summary>
    internal static IEnumerable<string> FilesOf(JsonObject manifest)
    {
        if (manifest["tasks"] is not JsonArray tasks)
        {
            yield break;
        }

        foreach (JsonObject task in tasks.OfType<JsonObject>())
        {
            string?[] files = [FileOf(task["head"]), FileOf(task["head"]?["float"]), FileOf(task["output"]?["centroids"])];
            foreach (string file in files.OfType<string>().Where(f => CollectedFolders.Any(folder => f.StartsWith(folder, StringComparison.Ordinal))))
            {
                yield return file;
            }
        }
    }

    private static string? FileOf(JsonNode? node) =>
        node is JsonObject o && o["file"] is JsonValue v && v.TryGetValue(out string? file) ? file : null;

    private static IEnumerable<string> GraphPaths(string bundleDirectory, Bundles.TaskDefinition task) =>
        task.Head.FloatVariant is { } variant ? [task.Head.FullPath, variant.FullPath] : [task.Head.FullPath];

    private static void DeleteWhenUnused(string bundleDirectory, HashSet<string> relativePaths, BundleSnapshot retiring, DateTime writtenBefore)
    {
        string root = Path.GetFullPath(bundleDirectory) + Path.DirectorySeparatorChar;
        var paths = relativePaths.Select(r => Path.GetFullPath(Path.Combine(root, r)))
            .Where(p => p.StartsWith(root, StringComparison.Ordinal) && File.Exists(p) && File.GetLastWriteTimeUtc(p) < writtenBefore)
            .ToHashSet(StringComparer.Ordinal);
        foreach (Bundles.TaskDefinition task in retiring.Tasks)
        {
            string[] running = [.. GraphPaths(bundleDirectory, task).Where(paths.Contains)];
            if (running.Length > 0)
            {
                retiring.Heads[task.Name].DeleteFilesOnDispose(running); // after the last request on it
                paths.ExceptWith(running);
            }
        }

        foreach (string path in paths)
        {
            HeadFileStore.TryDelete(path);
        }
    }
}
