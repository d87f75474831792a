using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Registry;

/// <summary>An uploaded head stored in the bundle: its manifest path, its full path, SHA-256, and whether this upload created the file.</summary>
internal readonly record struct StoredHead(string RelativePath, string FullPath, string Sha256, bool Created);

/// <summary>
/// Stores uploaded head graphs in the bundle's <c>heads/</c> folder as
/// <c>heads/&lt;task&gt;-v&lt;version&gt;-&lt;sha12&gt;.onnx</c>: written to a temporary file, flushed,
/// then renamed, so a crash never leaves a partial head under a real name.
/// </summary>
internal static class HeadFileStore
{
    /// <summary>
    /// Stores <paramref name="content"/> for task <paramref name="task"/> (a valid task name: it
    /// becomes part of the file name). A file of that name already there has the same content
    /// (same SHA-256 prefix) and is kept as it is.
    /// </summary>
    public static async Task<StoredHead> StoreAsync(string bundleDirectory, string task, int version, Stream content, CancellationToken cancellationToken)
    {
        string temp = BundleTempFiles.NewUploadPath(bundleDirectory);
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
                sha = await BundleFiles.Sha256Async(file, cancellationToken).ConfigureAwait(false);
            }

            string relative = $"{BundleTempFiles.HeadsFolder}/{task}-v{version}-{sha[..12]}.onnx";
            string target = Path.Combine(heads, Path.GetFileName(relative));
            if (File.Exists(target))
            {
                return new StoredHead(relative, target, sha, Created: false); // same name = same content (SHA-256 prefix)
            }

            File.Move(temp, target);
            return new StoredHead(relative, target, sha, Created: true);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    /// <summary>Removes a stored head that did not go into service (best effort: a stray file in heads/ does not affect serving).</summary>
    public static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path))
            {
                File.Delete(path);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort, as above.
        }
    }
}
