using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Tests.Support;

/// <summary>The toolkit's fixture bundle (tests/fixtures/tiny-bundle) and what it declares.</summary>
public static class TestBundle
{
    private static readonly Lazy<string> LazyDirectory = new(Locate);
    private static readonly Lazy<ModelBundle> LazyBundle = new(() => BundleLoader.LoadAsync(Directory).GetAwaiter().GetResult());

    public static string Directory => LazyDirectory.Value;

    /// <summary>The bundle as the loader validated it.</summary>
    public static ModelBundle Loaded => LazyBundle.Value;

    public static BundleManifest Manifest => Loaded.Manifest;

    public static IEnumerable<TaskManifest> Tasks(string input, string kind) =>
        Manifest.Tasks.Where(t => t.Input == input && t.Output.Kind == kind);

    public static TaskManifest SingleClassificationTask => Tasks("single", "classification").First();

    public static TaskManifest PairTask => Manifest.Tasks.First(t => t.Input == "pair");

    public static TaskManifest TaggingTask => Manifest.Tasks.First(t => t.Output.Kind == "tagging");

    public static TaskManifest RegressionTask => Manifest.Tasks.First(t => t.Output.Kind == "regression");

    /// <summary>Points the suite at another bundle (e.g. models/default) instead of the fixture.</summary>
    public const string OverrideVariable = "MULTITASKBERT_TEST_BUNDLE";

    private static string Locate()
    {
        if (Environment.GetEnvironmentVariable(OverrideVariable) is { Length: > 0 } overridden)
        {
            return Path.GetFullPath(overridden);
        }

        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "fixtures", "tiny-bundle");
            if (File.Exists(Path.Combine(candidate, BundleLoader.ManifestFileName)))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("tests/fixtures/tiny-bundle not found above " + AppContext.BaseDirectory);
    }
}

/// <summary>A throw-away copy of the fixture bundle for corrupting one thing at a time.</summary>
public sealed class BundleCopy : IDisposable
{
    public BundleCopy()
    {
        Directory = Path.Combine(Path.GetTempPath(), "mtbert-" + Guid.NewGuid().ToString("N"));
        foreach (string file in System.IO.Directory.EnumerateFiles(TestBundle.Directory, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(Directory, Path.GetRelativePath(TestBundle.Directory, file));
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    public string Directory { get; }

    public string PathOf(string relative) => Path.Combine(Directory, relative.Replace('/', Path.DirectorySeparatorChar));

    public JsonObject ReadManifest() => JsonNode.Parse(File.ReadAllText(PathOf(BundleLoader.ManifestFileName)))!.AsObject();

    /// <summary>The newest published version's manifest (<c>versions/NNNNNN.json</c>; manifest.json when none is).</summary>
    public JsonObject ReadNewestManifest()
    {
        string versions = PathOf(MultiTaskBert.Core.Registry.FolderVersionStore.VersionsFolder);
        string? newest = System.IO.Directory.Exists(versions) ? System.IO.Directory.GetFiles(versions, "*.json").Max(StringComparer.Ordinal) : null;
        return JsonNode.Parse(File.ReadAllText(newest ?? PathOf(BundleLoader.ManifestFileName)))!.AsObject();
    }

    public void WriteManifest(JsonObject manifest) =>
        File.WriteAllText(PathOf(BundleLoader.ManifestFileName), manifest.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    public void EditManifest(Action<JsonObject> edit)
    {
        JsonObject manifest = ReadManifest();
        edit(manifest);
        WriteManifest(manifest);
    }

    /// <summary>Loads the copy in a real engine and returns the validation error, which must name its file and field.</summary>
    public async Task<BundleValidationException> LoadFailsAsync()
    {
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
        using var serving = new ServingParts(sessions);
        var error = await Assert.ThrowsAsync<BundleValidationException>(() => serving.Registry.LoadAsync(Directory));
        Assert.False(serving.Engine.IsReady);
        Assert.StartsWith($"{error.File}: {error.Field}: ", error.Message);
        return error;
    }

    public string Sha256Of(string relative) => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(PathOf(relative))));

    /// <summary>
    /// Replaces an ASCII string of a head file by another of the same length (e.g. a metadata value:
    /// the protobuf stays valid) and records the new SHA-256 in the manifest; returns the new bytes.
    /// </summary>
    public byte[] PatchHead(string relative, string from, string to)
    {
        Assert.Equal(from.Length, to.Length);
        byte[] bytes = File.ReadAllBytes(PathOf(relative));
        byte[] find = System.Text.Encoding.ASCII.GetBytes(from);
        int at = bytes.AsSpan().IndexOf(find);
        Assert.True(at >= 0, $"'{from}' is not in {relative}");
        System.Text.Encoding.ASCII.GetBytes(to).CopyTo(bytes, at);
        Assert.True(bytes.AsSpan(at + find.Length).IndexOf(find) < 0, $"'{from}' occurs twice in {relative}");
        File.WriteAllBytes(PathOf(relative), bytes);
        string sha = Sha256Of(relative);
        EditManifest(m => m["tasks"]!.AsArray().First(t => (string?)t!["head"]!["file"] == relative)!["head"]!["sha256"] = sha);
        return bytes;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp folder left behind is harmless.
        }
    }
}
