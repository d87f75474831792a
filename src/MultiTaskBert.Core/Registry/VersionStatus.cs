namespace MultiTaskBert.Core.Registry;

/// <summary>
/// Where this replica stands among the published versions: the one it serves (and its model id),
/// the newest it has seen, and the last one it refused to serve (failed validation), if any.
/// </summary>
public sealed record VersionStatus(long Served, string Model, long Newest, long? Refused = null, string? RefusedReason = null, long Refusals = 0)
{
    /// <summary>Published versions newer than the one served.</summary>
    public long Behind => Math.Max(0, Newest - Served);

    /// <summary>One line for the readiness detail and the logs.</summary>
    public string Describe() =>
        $"bundle version {Served} ({Model}) of {Newest}" + (Behind > 0 ? $", {Behind} behind" : "")
        + (Refused is { } refused ? $"; version {refused} refused: {RefusedReason}" : "");
}

/// <summary>One version in <c>GET /admin/versions</c>: its number, model id, what change published it and when, its tasks.</summary>
public sealed record VersionInfo(long Number, string Model, string? Change, string? PublishedAt, IReadOnlyList<string> Tasks);

/// <summary>The versions kept (<c>GET /admin/versions</c>), newest first, with the one served here and the newest published.</summary>
public sealed record VersionHistory(long Served, long Newest, IReadOnlyList<VersionInfo> Versions);

/// <summary>What a rollback published: the new version (a copy of the earlier one's tasks) and its model id.</summary>
public sealed record RollbackResult(string Model, long Version, long RolledBackTo);

/// <summary>No version of that number is kept (never published, or collected).</summary>
public sealed class VersionNotFoundException(long number) : Exception($"version {number} is not kept (GET /admin/versions lists those that are)")
{
    public long Number { get; } = number;
}
