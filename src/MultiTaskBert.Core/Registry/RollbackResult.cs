namespace MultiTaskBert.Core.Registry;

/// <summary>What a rollback published: the new version (a copy of the earlier one's tasks) and its model id.</summary>
public sealed record RollbackResult(string Model, long Version, long RolledBackTo);
