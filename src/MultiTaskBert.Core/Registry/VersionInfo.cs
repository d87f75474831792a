namespace MultiTaskBert.Core.Registry;

/// <summary>One version in <c>GET /admin/versions</c>: its number, model id, what change published it and when, its tasks.</summary>
public sealed record VersionInfo(long Number, string Model, string? Change, string? PublishedAt, IReadOnlyList<string> Tasks);
