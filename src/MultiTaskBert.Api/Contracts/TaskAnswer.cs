using System.Text.Json;
using System.Text.Json.Serialization;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Api.Contracts;

/// <summary>
/// One task's answer in the <c>/v2</c> shape: <c>task</c> and <c>kind</c> (the discriminator, the
/// task's head kind), then the kind's result record's own fields. Generated clients type every kind
/// from it (a list of discriminated records), which the <c>/classify</c> map of unions cannot give.
/// </summary>
[JsonConverter(typeof(TaskAnswerConverter))]
public sealed record TaskAnswer(string Task, [property: JsonIgnore] HeadKind Kind, [property: JsonIgnore] TaskResult Result);

/// <summary>The v2 answer to one input: its tasks' answers in the order the tasks ran.</summary>
public sealed record ClassifyV2Response(string Model, IReadOnlyList<TaskAnswer> Results);

/// <summary>One input's answers in a v2 batch.</summary>
public sealed record InputAnswers(IReadOnlyList<TaskAnswer> Results);

/// <summary>The v2 answer to a batch: one entry per input, in input order.</summary>
public sealed record ClassifyBatchV2Response(string Model, IReadOnlyList<InputAnswers> Inputs);

/// <summary>Writes <c>task</c>, <c>kind</c> and the result record's members flat in one object (write-only: the service never reads answers).</summary>
internal sealed class TaskAnswerConverter : JsonConverter<TaskAnswer>
{
    public override TaskAnswer Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("Task answers are written, never read.");

    public override void Write(Utf8JsonWriter writer, TaskAnswer value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(value);
        writer.WriteStartObject();
        writer.WriteString(options.PropertyNamingPolicy?.ConvertName("task") ?? "task", value.Task);
        writer.WriteString(options.PropertyNamingPolicy?.ConvertName("kind") ?? "kind", value.Kind.Name);
        using JsonDocument fields = JsonSerializer.SerializeToDocument(value.Result, value.Result.GetType(), options);
        foreach (JsonProperty field in fields.RootElement.EnumerateObject())
        {
            field.WriteTo(writer);
        }

        writer.WriteEndObject();
    }
}
