namespace MultiTaskBert.Core.Engine;

/// <summary>
/// A request the engine cannot serve as asked (unknown task, pair task without a text pair, …).
/// <see cref="Field"/> uses batch paths: <c>tasks[1]</c>, <c>inputs[3].textPair</c>.
/// </summary>
public sealed class InvalidClassifyRequestException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}
