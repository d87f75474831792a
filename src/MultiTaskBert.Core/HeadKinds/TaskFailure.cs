namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// A task whose head failed for this input (an output that is not finite or not of the promised
/// shape, an ONNX Runtime error, a quarantined head): the other tasks of the request still answer.
/// Every kind answers it as a <see cref="TaskErrorResult"/>.
/// </summary>
/// <param name="Kind">The task's kind.</param>
/// <param name="Title">What went wrong, in a few words.</param>
/// <param name="Detail">The check that failed, with its figures.</param>
public sealed record TaskFailure(HeadKind Kind, string Title, string Detail) : TaskPrediction([])
{
    public override HeadKind Kind { get; } = Kind;

    /// <summary>The task's answer on the wire.</summary>
    public TaskErrorResult Answer() => new(new TaskError(Title, Detail));
}

/// <summary>
/// A task's answer when its head failed for this input: <c>error</c> (problem-shaped: <c>title</c>,
/// <c>detail</c>) in place of the kind's own record. The other tasks of the answer are unaffected.
/// </summary>
public sealed record TaskErrorResult(TaskError Error) : TaskResult;

/// <summary>Why a task has no answer: a short <c>title</c> and the <c>detail</c> of the failed check.</summary>
public sealed record TaskError(string Title, string Detail);
