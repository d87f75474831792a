namespace MultiTaskBert.Core.Registry;

/// <summary>What a reload of the manifest (<c>POST /admin/reload</c>) changed, by task name.</summary>
public sealed record ReloadResult(string Model, IReadOnlyList<string> Added, IReadOnlyList<string> Replaced, IReadOnlyList<string> Removed, IReadOnlyList<string> Unchanged);
