using System.Text.Json;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.HeadKinds;

/// <summary>Swagger shows a task result as the union it is: an object anyOf the kinds' records and the per-task error record (closed, so exactly one matches), each standing alone.</summary>
[Collection(ApiCollection.Name)]
public sealed class TaskResultSchemaTests(ApiFactory factory)
{
    [Fact]
    public async Task A_task_result_is_one_of_the_kinds_result_records()
    {
        using HttpClient client = factory.CreateClient();
        using JsonDocument document = JsonDocument.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"));
        JsonElement schemas = document.RootElement.GetProperty("components").GetProperty("schemas");
        string Ref(JsonElement schema) => schema.GetProperty("$ref").GetString()!;
        string[] Members(string schema) => [.. schemas.GetProperty(schema).GetProperty("properties").EnumerateObject().Select(p => p.Name)];

        JsonElement union = schemas.GetProperty("TaskResult");
        Assert.Equal(
            HeadKindRegistry.ResultTypes.Select(t => $"#/components/schemas/{t.Name}"),
            union.GetProperty("anyOf").EnumerateArray().Select(Ref));
        Assert.False(union.TryGetProperty("discriminator", out _));
        Assert.False(union.TryGetProperty("properties", out _));
        Assert.Equal("object", union.GetProperty("type").GetString());

        Assert.Equal(["label", "score", "scores", "fallback"], Members("ClassificationResult"));
        Assert.Equal(["value"], Members("RegressionResult"));
        Assert.Equal(["tags", "entities"], Members("TaggingResult"));
        Assert.Equal(["error"], Members("TaskErrorResult"));
        Assert.Equal(["title", "detail"], Members("TaskError"));
        foreach (HeadKind kind in HeadKindRegistry.Kinds)
        {
            Assert.False(schemas.GetProperty(kind.ResultType.Name).TryGetProperty("allOf", out _), kind.Name);
        }

        JsonElement results = schemas.GetProperty("ClassifyResponse").GetProperty("properties").GetProperty("results");
        Assert.Equal("#/components/schemas/TaskResult", Ref(results.GetProperty("additionalProperties")));
    }
}
