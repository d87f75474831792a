using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// The published versions of a bundle as files in its folder: <c>versions/000042.json</c>, each a
/// whole manifest. Works on a local disk and on a shared volume (NFS) without file notifications:
/// a version is written to a temporary file, flushed, then hard-linked to its name
/// (<see cref="ExclusiveName"/>), which fails when the name exists: readers never see a partial
/// file and two writers never both win.
/// </summary>
public sealed class FolderVersionStore : IBundleVersionStore
{
    public const string VersionsFolder = "versions";
    /// <summary>Its temporary files (<see cref="BundleTempFiles.RemoveStale"/> removes those a killed process left).</summary>
    public const string TempPattern = ".publish-*.tmp";
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    private readonly string _bundleDirectory;
    private readonly string _versions;

    public FolderVersionStore(string bundleDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bundleDirectory);
        _bundleDirectory = Path.GetFullPath(bundleDirectory);
        _versions = Path.Combine(_bundleDirectory, VersionsFolder);
    }

    /// <summary>The file of version <paramref name="number"/>, relative to the bundle (as errors name it).</summary>
    public static string RelativePath(long number) =>
        number == 0 ? BundleLoader.ManifestFileName : $"{VersionsFolder}/{number.ToString("D6", CultureInfo.InvariantCulture)}.json";

    public string NameOf(long number) => RelativePath(number);

    public async Task<long> FindNewestAsync(long atLeast, CancellationToken cancellationToken)
    {
        long newest = atLeast;
        if (newest == 0)
        {
            IReadOnlyList<long> stored = await ListAsync(cancellationToken).ConfigureAwait(false);
            newest = stored.Count > 0 ? stored[^1] : 0;
        }

        // Versions are contiguous above the oldest kept one: probe the next names, no listing.
        while (File.Exists(PathOf(newest + 1)))
        {
            newest++;
        }

        return newest;
    }

    public async Task<PublishedVersion?> ReadAsync(long number, CancellationToken cancellationToken)
    {
        try
        {
            await using var stream = new FileStream(PathOf(number), FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16, FileOptions.Asynchronous);
            JsonNode? node = await JsonNode.ParseAsync(stream, cancellationToken: cancellationToken).ConfigureAwait(false);
            return node is JsonObject manifest
                ? new PublishedVersion(number, manifest)
                : throw new BundleValidationException(RelativePath(number), "(root)", "the manifest is not a JSON object");
        }
        catch (JsonException ex)
        {
            throw new BundleValidationException(RelativePath(number), "(root)", $"invalid manifest JSON: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            return null; // removed by garbage collection meanwhile
        }
    }

    public async Task<bool> TryPublishAsync(long number, JsonObject manifest, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        ArgumentOutOfRangeException.ThrowIfLessThan(number, 1);
        Directory.CreateDirectory(_versions);
        string temp = Path.Combine(_versions, $".publish-{Guid.NewGuid():N}.tmp");
        string target = PathOf(number);
        try
        {
            await using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                await JsonSerializer.SerializeAsync(stream, manifest, Indented, cancellationToken).ConfigureAwait(false);
                await stream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stream.Flush(flushToDisk: true);
            }

            return ExclusiveName.TryLink(temp, target); // false: another replica published this number first
        }
        finally
        {
            TryDelete(temp);
        }
    }

    public Task<IReadOnlyList<long>> ListAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(_versions))
        {
            return Task.FromResult<IReadOnlyList<long>>([]);
        }

        List<long> numbers = [];
        foreach (string file in Directory.EnumerateFiles(_versions, "*.json"))
        {
            string name = Path.GetFileNameWithoutExtension(file);
            if (name.All(char.IsAsciiDigit) && long.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out long number) && number > 0)
            {
                numbers.Add(number);
            }
        }

        numbers.Sort();
        return Task.FromResult<IReadOnlyList<long>>(numbers);
    }

    public Task DeleteAsync(long number, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(number, 1);
        TryDelete(PathOf(number));
        return Task.CompletedTask;
    }

    private string PathOf(long number) => Path.Combine(_bundleDirectory, RelativePath(number));

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a stray file does not change what is served.
        }
    }
}
