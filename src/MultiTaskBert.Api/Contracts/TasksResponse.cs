namespace MultiTaskBert.Api.Contracts;

/// <summary>The tasks of the loaded bundle (<c>GET /tasks</c>).</summary>
public sealed record TasksResponse(string Model, IReadOnlyList<TaskInfo> Tasks);
