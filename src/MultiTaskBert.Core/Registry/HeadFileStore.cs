using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Registry;

/// <summary>An uploaded head stored in the bundle: its manifest path, its full path, SHA-256, and whether this upload created the file.</summary>
internal readonly record struct StoredHead(string RelativePath, string FullPath, string Sha256, bool Created);

/// <summary>
/// Stores uploaded head graphs in the bundle's <c>heads/</c> folder as
/// <c>heads/&lt;task&gt;-v&lt;version&gt;-&lt;sha12&gt;.onnx</c>: written to a temporary file, flushed,
/// then linked to its name (<see cref="ExclusiveName"/>), so a crash never leaves a partial head under
/// a real name. An upload already spooled into <c>heads/</c> is linked, not written a second time. A stored name is never
/// overwritten: every published version that reads it keeps reading the same bytes.
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
        if (content is FileStream spooled && string.Equals(Path.GetDirectoryName(Path.GetFullPath(spooled.Name)), heads, StringComparison.Ordinal))
        {
            // Already spooled into heads/ (the multipart upload): linked into place, not copied again.
            return await StoreSpooledAsync(heads, task, version, spooled, cancellationToken).ConfigureAwait(false);
        }

        try
        {
            string sha;
            await using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await content.CopyToAsync(file, cancellationToken).ConfigureAwait(false);
                sha = await FlushAndHashAsync(file, cancellationToken).ConfigureAwait(false);
            }

            return MoveIntoPlace(heads, task, version, temp, sha);
        }
        finally
        {
            TryDelete(temp);
        }
    }

    /// <summary>A file already written in <c>heads/</c>: flushed, hashed, linked (its own delete-on-close then removes the spool name).</summary>
    private static async Task<StoredHead> StoreSpooledAsync(string heads, string task, int version, FileStream spooled, CancellationToken cancellationToken)
    {
        string sha = await FlushAndHashAsync(spooled, cancellationToken).ConfigureAwait(false);
        return MoveIntoPlace(heads, task, version, spooled.Name, sha);
    }

    /// <summary>Flushes <paramref name="file"/> to disk and hashes it from its start (through the open stream: it is locked for others).</summary>
    private static async Task<string> FlushAndHashAsync(FileStream file, CancellationToken cancellationToken)
    {
        await file.FlushAsync(cancellationToken).ConfigureAwait(false);
        file.Flush(flushToDisk: true);
        file.Position = 0;
        return await BundleFiles.Sha256Async(file, cancellationToken).ConfigureAwait(false);
    }

    private static StoredHead MoveIntoPlace(string heads, string task, int version, string written, string sha)
    {
        string relative = $"{BundleTempFiles.HeadsFolder}/{task}-v{version}-{sha[..12]}.onnx";
        string target = Path.Combine(heads, Path.GetFileName(relative));
        // Never overwritten (a published version may read it), and of two uploads racing for one name
        // exactly one creates it. The written name goes with its temporary file's clean-up.
        if (ExclusiveName.TryLink(written, target))
        {
            return new StoredHead(relative, target, sha, Created: true);
        }

        Touch(target); // same name = same content (SHA-256 prefix); fresh again for garbage collection's grace
        return new StoredHead(relative, target, sha, Created: false);
    }

    /// <summary>Marks a head file as just used, so garbage collection (<see cref="RegistryOptions.CollectGrace"/>) leaves it alone.</summary>
    public static void Touch(string path)
    {
        try
        {
            File.SetLastWriteTimeUtc(path, DateTime.UtcNow);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A read-only file serves as well; only its protection from collection is lost.
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
