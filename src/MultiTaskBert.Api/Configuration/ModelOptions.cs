using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>Configuration section <c>Model</c>.</summary>
public sealed class ModelOptions
{
    public const string SectionName = "Model";

    /// <summary>Bundle folder; a relative path is resolved against the application's base directory.</summary>
    [Required]
    public string BundlePath { get; set; } = "models/default";

    public string ResolveBundlePath() =>
        Path.GetFullPath(Path.IsPathRooted(BundlePath) ? BundlePath : Path.Combine(AppContext.BaseDirectory, BundlePath));
}
