namespace MultiTaskBert.Core.Registry;

/// <summary>What an admin change did.</summary>
public sealed record TaskChangeResult(string Model, string Action, string Task, int? Version, int? PreviousVersion, string? HeadFile, string? HeadSha256);
