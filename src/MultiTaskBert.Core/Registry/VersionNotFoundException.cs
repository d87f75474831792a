namespace MultiTaskBert.Core.Registry;

/// <summary>No version of that number is kept (never published, or collected).</summary>
public sealed class VersionNotFoundException(long number) : Exception($"version {number} is not kept (GET /admin/versions lists those that are)")
{
    public long Number { get; } = number;
}
