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
