namespace MultiTaskBert.Core.Registry;

/// <summary>What an admin change did; <paramref name="BundleVersion"/>: the published bundle version it made.</summary>
public sealed record TaskChangeResult(string Model, string Action, string Task, int? Version, int? PreviousVersion, string? HeadFile, string? HeadSha256, long BundleVersion);
