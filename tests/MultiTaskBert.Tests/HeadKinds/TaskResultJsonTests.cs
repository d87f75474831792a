using System.Text.Json;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Api.Hosting;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Tests.HeadKinds;

/// <summary>Each result record's JSON with the service's settings: its own members, in order, no type member.</summary>
public sealed class TaskResultJsonTests
{
    private static readonly JsonSerializerOptions Options = ServiceOptions();

    private static JsonSerializerOptions ServiceOptions()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ServiceJson.Configure(options);
        return options;
    }

    private static readonly Dictionary<string, double> Scores = new() { ["neg"] = 0.25, ["pos"] = 0.75 };

    private static string Json(TaskResult result) => JsonSerializer.Serialize(result, Options);

    [Fact]
    public void Classification()
    {
        Assert.Equal("""{"label":"pos","score":0.75,"scores":{"neg":0.25,"pos":0.75}}""",
            Json(new ClassificationResult("pos", 0.75, Scores)));
        Assert.Equal("""{"label":"oos","score":0.75,"scores":{"neg":0.25,"pos":0.75},"fallback":{"topLabel":"pos","rule":"energy","value":1.5,"threshold":2}}""",
            Json(new ClassificationResult("oos", 0.75, Scores, new FallbackResult("pos", "energy", 1.5, 2))));
    }

    [Fact]
    public void Classification_omits_an_absent_fallback_under_any_settings()
    {
        Assert.Equal("""{"Label":"pos","Score":0.75,"Scores":{"neg":0.25,"pos":0.75}}""",
            JsonSerializer.Serialize(new ClassificationResult("pos", 0.75, Scores)));
    }

    [Fact]
    public void Regression() => Assert.Equal("""{"value":-3.25}""", Json(new RegressionResult(-3.25)));

    [Fact]
    public void Tagging() => Assert.Equal(
        """{"tags":[{"word":"new","tag":"B-city"},{"word":"york","tag":"I-city"}],"entities":[{"type":"city","text":"new york","start":0,"end":8}]}""",
        Json(new TaggingResult([new("new", "B-city"), new("york", "I-city")], [new("city", "new york", 0, 8)])));

    [Fact]
    public void A_response_holds_each_task_as_its_own_record()
    {
        var response = new ClassifyResponse("m@1", new Dictionary<string, TaskResult>
        {
            ["sst2"] = new ClassificationResult("pos", 0.75, Scores),
            ["stsb"] = new RegressionResult(4),
            ["slots"] = new TaggingResult([new("hi", "O")], []),
        });

        Assert.Equal(
            """{"model":"m@1","results":{"sst2":{"label":"pos","score":0.75,"scores":{"neg":0.25,"pos":0.75}},"stsb":{"value":4},"slots":{"tags":[{"word":"hi","tag":"O"}],"entities":[]}}}""",
            JsonSerializer.Serialize(response, Options));
    }

    [Fact]
    public void A_result_type_no_kind_registers_is_not_written_as_an_empty_object()
    {
        Assert.Throws<NotSupportedException>(() => Json(new UnregisteredResult(1)));
    }

    private sealed record UnregisteredResult(int Count) : TaskResult;
}
