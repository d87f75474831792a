namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// The temporary files the service writes inside a bundle folder (head uploads in <c>heads/</c>,
/// publishes in <c>versions/</c>; earlier releases also rewrote the manifest through one) and
/// their removal at start-up: a process killed mid-upload or mid-publish leaves them behind, and
/// nothing else would ever delete them.
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

    /// <summary>
    /// Deletes leftovers of earlier processes last written before <paramref name="olderThan"/> ago;
    /// returns the paths removed (relative to the bundle). Younger ones may belong to another
    /// replica uploading or publishing into the same (shared) folder right now.
    /// </summary>
    public static IReadOnlyList<string> RemoveStale(string bundleDirectory, TimeSpan olderThan)
    {
        ArgumentNullException.ThrowIfNull(bundleDirectory);
        var removed = new List<string>();
        DateTime before = DateTime.UtcNow - olderThan;
        string heads = Path.Combine(bundleDirectory, HeadsFolder);
        string versions = Path.Combine(bundleDirectory, Registry.FolderVersionStore.VersionsFolder);
        IEnumerable<string> candidates = Directory.Exists(bundleDirectory)
            ? Directory.EnumerateFiles(bundleDirectory, ManifestPattern)
                .Concat(Directory.Exists(heads) ? Directory.EnumerateFiles(heads, UploadPattern) : [])
                .Concat(Directory.Exists(versions) ? Directory.EnumerateFiles(versions, Registry.FolderVersionStore.TempPattern) : [])
                .Where(path => File.GetLastWriteTimeUtc(path) < before)
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
