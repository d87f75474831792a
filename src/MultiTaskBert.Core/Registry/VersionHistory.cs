namespace MultiTaskBert.Core.Registry;

/// <summary>The versions kept (<c>GET /admin/versions</c>), newest first, with the one served here and the newest published.</summary>
public sealed record VersionHistory(long Served, long Newest, IReadOnlyList<VersionInfo> Versions);
