namespace MultiTaskBert.Core.Registry;

/// <summary>No task of that name is loaded.</summary>
public sealed class TaskNotFoundException(string task) : Exception($"no task '{task}' is loaded")
{
    public string Task { get; } = task;
}
