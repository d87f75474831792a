namespace MultiTaskBert.Core.Registry;

/// <summary>The change conflicts with what is loaded (e.g. a replacement whose version is not newer).</summary>
public sealed class TaskConflictException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
