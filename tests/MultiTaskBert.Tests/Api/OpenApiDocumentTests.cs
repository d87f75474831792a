using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Tests.Admin;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Api;

/// <summary>
/// Issue #30: the OpenAPI document is one that client generators type (clients/test.sh generates,
/// compiles and runs the clients themselves), and the v2 answers are the v1 answers as a list.
/// </summary>
public sealed class OpenApiDocumentTests
{
    private static async Task<JsonObject> DocumentAsync(HttpClient client) =>
        JsonNode.Parse(await client.GetStringAsync("/swagger/v1/swagger.json"))!.AsObject();

    [Fact]
    public async Task Every_registered_kind_has_a_v2_answer_schema_discriminated_by_kind()
    {
        using var host = new AdminHost();
        JsonObject schemas = (await DocumentAsync(host.Client))["components"]!["schemas"]!.AsObject();

        JsonObject answer = schemas["TaskAnswer"]!.AsObject();
        Assert.Equal("kind", (string?)answer["discriminator"]!["propertyName"]);
        Assert.Equal(HeadKindRegistry.Kinds.Select(k => k.Name), answer["properties"]!["kind"]!["enum"]!.AsArray().Select(n => (string?)n));
        Assert.Equal(["task", "kind"], answer["required"]!.AsArray().Select(n => (string?)n));
        foreach (HeadKind kind in HeadKindRegistry.Kinds)
        {
            string target = (string)answer["discriminator"]!["mapping"]![kind.Name]!;
            JsonArray allOf = schemas[target.Split('/')[^1]]!["allOf"]!.AsArray();
            Assert.Equal("#/components/schemas/TaskAnswer", (string?)allOf[0]!["$ref"]);
            JsonObject record = schemas[kind.ResultType.Name]!.AsObject();
            Assert.Equal(record["properties"]!.AsObject().Select(p => p.Key), allOf[1]!["properties"]!.AsObject().Select(p => p.Key));
            Assert.Equal(record["required"]?.ToJsonString(), allOf[1]!["required"]?.ToJsonString());
        }

        Assert.Equal(["label", "score", "scores"], schemas["ClassificationResult"]!["required"]!.AsArray().Select(n => (string?)n));
        Assert.Null(schemas["ClassificationResult"]!["properties"]!["label"]!["nullable"]); // written always, never null
    }

    [Fact]
    public async Task The_document_declares_servers_problems_the_upload_retry_after_enums_and_no_raw_doc_references()
    {
        using var host = new AdminHost();
        JsonObject document = await DocumentAsync(host.Client);
        string text = document.ToJsonString();
        JsonObject schemas = document["components"]!["schemas"]!.AsObject();

        Assert.StartsWith("http://localhost", (string?)document["servers"]![0]!["url"]);
        Assert.Equal("#/components/schemas/ProblemDetails", (string?)schemas["HttpValidationProblemDetails"]!["allOf"]![0]!["$ref"]);
        Assert.Contains("detail", schemas["ProblemDetails"]!["required"]!.AsArray().Select(n => (string?)n));
        Assert.True((bool)schemas["ProblemDetails"]!["properties"]!["detail"]!["x-ms-primary-error-message"]!);

        JsonObject form = document["paths"]!["/admin/tasks/upload"]!["post"]!["requestBody"]!["content"]!["multipart/form-data"]!["schema"]!.AsObject();
        Assert.Equal("binary", (string?)form["properties"]!["head"]!["format"]);
        Assert.Equal(["manifest", "head"], form["required"]!.AsArray().Select(n => (string?)n));
        Assert.Equal(["application/json"], document["paths"]!["/admin/tasks"]!["post"]!["requestBody"]!["content"]!.AsObject().Select(c => c.Key));

        foreach ((string path, JsonNode? item) in document["paths"]!.AsObject())
        {
            foreach ((string method, JsonNode? operation) in item!.AsObject())
            {
                if (operation!["responses"]!["503"] is { } unavailable)
                {
                    Assert.True(unavailable["headers"]?["Retry-After"] is not null, $"{method} {path}: 503 without Retry-After");
                }
            }
        }

        Assert.Equal(["single", "pair"], schemas["TaskInfo"]!["properties"]!["input"]!["enum"]!.AsArray().Select(n => (string?)n));
        Assert.Equal(["text"], schemas["ClassifyRequest"]!["required"]!.AsArray().Select(n => (string?)n));
        Assert.DoesNotMatch(@"\b[MTPF]:MultiTaskBert\.", text);
        Assert.DoesNotContain("additionalProp1", text);
    }

    [Fact]
    public async Task The_examples_name_tasks_of_the_served_bundle_and_their_answers_are_the_real_ones()
    {
        using var host = new AdminHost();
        JsonObject document = await DocumentAsync(host.Client);
        HashSet<string?> tasks = [.. (await host.TasksAsync()).EnumerateArray().Select(t => t.GetProperty("name").GetString())];
        JsonObject classify = document["paths"]!["/v2/classify"]!["post"]!.AsObject();
        JsonObject requests = classify["requestBody"]!["content"]!["application/json"]!["examples"]!.AsObject();
        JsonObject answers = classify["responses"]!["200"]!["content"]!["application/json"]!["examples"]!.AsObject();

        // One example per kind the bundle has, each answering as that kind.
        // One example per kind the served bundle has a task of (the fixture has no examples task).
        HeadKind[] served = [.. HeadKindRegistry.Kinds.Where(k => TestBundle.Manifest.Tasks.Any(t => t.Output.Kind == k.Name))];
        Assert.Equal(served.Length, requests.Count(e => served.Any(k => e.Key.StartsWith($"{k.Name}: ", StringComparison.Ordinal))));
        foreach ((string name, JsonNode? example) in requests)
        {
            JsonNode request = example!["value"]!;
            Assert.All(request["tasks"]?.AsArray() ?? [], t => Assert.Contains((string?)t, tasks));
            using HttpResponseMessage response = await host.Client.PostAsync("/v2/classify", new StringContent(request.ToJsonString(), Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(answers[name]!["value"]!.ToJsonString(), JsonNode.Parse(await response.Content.ReadAsStringAsync())!.ToJsonString());
        }
    }

    [Fact]
    public async Task A_v2_answer_is_the_v1_answer_with_its_task_and_kind()
    {
        using var host = new AdminHost();
        const string Body = "{\"text\":\"wake me up at 7 am tomorrow\"}";
        JsonObject v1 = (await (await host.Client.PostAsync("/classify", new StringContent(Body, Encoding.UTF8, "application/json"))).Content.ReadFromJsonAsync<JsonObject>())!;
        JsonObject v2 = (await (await host.Client.PostAsync("/v2/classify", new StringContent(Body, Encoding.UTF8, "application/json"))).Content.ReadFromJsonAsync<JsonObject>())!;
        Dictionary<string, string> kinds = (await host.TasksAsync()).EnumerateArray().ToDictionary(t => t.GetProperty("name").GetString()!, t => t.GetProperty("kind").GetString()!);

        Assert.Equal((string?)v1["model"], (string?)v2["model"]);
        JsonArray list = v2["results"]!.AsArray();
        Assert.Equal(v1["results"]!.AsObject().Select(r => r.Key), list.Select(a => (string?)a!["task"]));
        foreach (JsonNode? answer in list)
        {
            var rest = (JsonObject)answer!.DeepClone();
            string task = (string)rest["task"]!;
            Assert.Equal(kinds[task], (string?)rest["kind"]);
            rest.Remove("task");
            rest.Remove("kind");
            Assert.Equal(v1["results"]![task]!.ToJsonString(), rest.ToJsonString());
        }
    }
}
