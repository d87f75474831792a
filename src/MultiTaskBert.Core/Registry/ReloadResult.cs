namespace MultiTaskBert.Core.Registry;

/// <summary>What <see cref="BundleRegistry.ReloadAsync"/> changed, by task name.</summary>
public sealed record ReloadResult(string Model, IReadOnlyList<string> Added, IReadOnlyList<string> Replaced, IReadOnlyList<string> Removed, IReadOnlyList<string> Unchanged);
