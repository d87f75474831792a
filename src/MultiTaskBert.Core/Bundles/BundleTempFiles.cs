namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// The temporary files the service writes inside a bundle folder (head uploads in <c>heads/</c>;
/// earlier releases also rewrote the manifest through a temporary file) and their removal at
/// start-up: a process killed mid-upload leaves them behind, and nothing else would ever delete
/// them. Publish leftovers are <c>Registry/FolderVersionStore</c>'s own.
/// </summary>
public static class BundleTempFiles
{
    public const string HeadsFolder = "heads";
    private const string UploadPattern = ".upload-*.tmp";
    private const string ManifestPattern = "." + BundleLoader.ManifestFileName + ".*.tmp";

    /// <summary>A new temporary path for an uploaded head in <c>heads/</c> (created if missing).</summary>
    public static string NewUploadPath(string bundleDirectory)
    {
        string heads = Path.Combine(bundleDirectory, HeadsFolder);
        Directory.CreateDirectory(heads);
        return Path.Combine(heads, $".upload-{Guid.NewGuid():N}.tmp");
    }

    /// <summary>Deletes leftovers of earlier processes; returns the paths removed (relative to the bundle).</summary>
    public static IReadOnlyList<string> RemoveStale(string bundleDirectory)
    {
        ArgumentNullException.ThrowIfNull(bundleDirectory);
        var removed = new List<string>();
        string heads = Path.Combine(bundleDirectory, HeadsFolder);
        IEnumerable<string> candidates = Directory.Exists(bundleDirectory)
            ? Directory.EnumerateFiles(bundleDirectory, ManifestPattern)
                .Concat(Directory.Exists(heads) ? Directory.EnumerateFiles(heads, UploadPattern) : [])
            : [];
        foreach (string path in candidates.ToList())
        {
            try
            {
                File.Delete(path);
                removed.Add(Path.GetRelativePath(bundleDirectory, path).Replace(Path.DirectorySeparatorChar, '/'));
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                // A read-only bundle (e.g. a mounted volume) serves fine with a stray file in it.
            }
        }

        return removed;
    }
}
