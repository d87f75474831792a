using System.Security.Cryptography;

namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// Files of a bundle folder: the one containment rule for the paths a manifest names, and the one
/// SHA-256 the service computes (loader, task registry and uploads alike).
/// </summary>
public static class BundleFiles
{
    /// <summary>
    /// Resolves a manifest path ('/'-separated, relative) and insists that it stays inside the bundle
    /// and exists.
    /// </summary>
    public static string ResolveExistingFile(string directory, string relativePath, string field)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (string.IsNullOrWhiteSpace(relativePath) || Path.IsPathRooted(relativePath) || relativePath.Contains('\\', StringComparison.Ordinal))
        {
            throw Invalid(field, $"'{relativePath}' must be a relative '/'-separated path inside the bundle");
        }

        // NUL and other controls: Path.GetFullPath throws on NUL, and no bundle file needs them.
        if (relativePath.Any(char.IsControl))
        {
            throw Invalid(field, $"'{BundleValidationException.Printable(relativePath)}' holds a control character (NUL, newline, ...)");
        }

        string root = Path.TrimEndingDirectorySeparator(directory) + Path.DirectorySeparatorChar;
        string fullPath = Path.GetFullPath(Path.Combine(directory, relativePath.Replace('/', Path.DirectorySeparatorChar)));
        if (!fullPath.StartsWith(root, StringComparison.Ordinal))
        {
            throw Invalid(field, $"'{relativePath}' leaves the bundle folder");
        }

        if (!File.Exists(fullPath))
        {
            throw new BundleValidationException(relativePath, field, $"file not found (referenced by {BundleLoader.ManifestFileName})");
        }

        return fullPath;
    }

    /// <summary>SHA-256 of a stream from its position to its end, lower-case hex (as manifests write it).</summary>
    public static async Task<string> Sha256Async(Stream content, CancellationToken cancellationToken = default) =>
        Convert.ToHexStringLower(await SHA256.HashDataAsync(content, cancellationToken).ConfigureAwait(false));

    /// <summary>SHA-256 of a file, lower-case hex.</summary>
    public static async Task<string> Sha256Async(string fullPath, CancellationToken cancellationToken = default)
    {
        await using FileStream stream = new(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16, useAsync: true);
        return await Sha256Async(stream, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Throws a validation error naming <paramref name="field"/> unless the file's SHA-256 is <paramref name="expected"/>.</summary>
    public static async Task VerifySha256Async(string fullPath, string relativePath, string expected, string field, CancellationToken cancellationToken)
    {
        string actual = await Sha256Async(fullPath, cancellationToken).ConfigureAwait(false);
        if (!string.Equals(actual, expected, StringComparison.OrdinalIgnoreCase))
        {
            throw new BundleValidationException(relativePath, field, $"SHA-256 mismatch: manifest says {expected}, file has {actual}");
        }
    }

    private static BundleValidationException Invalid(string field, string problem) => new(BundleLoader.ManifestFileName, field, problem);
}
