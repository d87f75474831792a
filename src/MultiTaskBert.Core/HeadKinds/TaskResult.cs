namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// One task's answer: the answer record of the task's kind (<c>GET /tasks</c> lists each task's kind),
/// written as that record's own fields, with no type member.
/// </summary>
/// <remarks>
/// A union with one member per head kind (<see cref="HeadKind.ResultType"/>); System.Text.Json learns
/// the members from <see cref="HeadKindRegistry.DescribeResultUnion"/>.
/// </remarks>
public abstract record TaskResult;
