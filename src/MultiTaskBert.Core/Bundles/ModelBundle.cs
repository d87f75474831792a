namespace MultiTaskBert.Core.Bundles;

/// <summary>A bundle whose manifest and files passed validation (graph I/O is checked when sessions are created).</summary>
public sealed record ModelBundle
{
    public required string Directory { get; init; }
    public required BundleManifest Manifest { get; init; }
    public required string VocabPath { get; init; }
    public required string TrunkPath { get; init; }

    /// <summary>The float16 trunk for CUDA (<c>trunk.float16</c>), or null when the bundle has none.</summary>
    public string? Float16TrunkPath { get; init; }

    /// <summary>Trunk output name per branch layer.</summary>
    public required IReadOnlyDictionary<int, string> TrunkOutputsByLayer { get; init; }

    public required IReadOnlyList<TaskDefinition> Tasks { get; init; }

    /// <summary>"&lt;name&gt;@&lt;version&gt;", as the API reports it.</summary>
    public string ModelId => $"{Manifest.Name}@{Manifest.Version}";
}
