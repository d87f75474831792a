using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Fallback;

/// <summary>
/// The out-of-scope fallback through the real service: a copy of the fixture bundle whose single-sentence
/// classification task declares a fallback, with thresholds set just above and just below the measure
/// the service itself reports for an utterance.
/// </summary>
public sealed class FallbackApiTests : IDisposable
{
    private const string Text = "the movie was great";
    private readonly BundleCopy _bundle = new();
    private readonly string _task = TestBundle.SingleClassificationTask.Name;

    public void Dispose() => _bundle.Dispose();

    private void DeclareFallback(string rule, double threshold, string label = "out_of_scope") => _bundle.EditManifest(m =>
    {
        JsonObject task = m["tasks"]!.AsArray().Select(t => t!.AsObject()).First(t => (string?)t["name"] == _task);
        task["output"]!.AsObject()["fallback"] = new JsonObject { ["label"] = label, ["rule"] = rule, ["threshold"] = threshold };
    });

    private ConfiguredApiFactory Host() => new(new Dictionary<string, string?> { ["Model:BundlePath"] = _bundle.Directory });

    private static async Task<(HttpStatusCode Status, JsonElement Body)> Post(HttpClient client, string path, object body)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync(path, body);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    /// <summary>The rule's measure of <see cref="Text"/> as the fixture's head scores it, computed here from the served probabilities/logits.</summary>
    private async Task<(string TopLabel, double MaxProbability, double Margin)> Unfallen()
    {
        using ConfiguredApiFactory host = Host();
        (HttpStatusCode status, JsonElement body) = await Post(host.CreateClient(), "/classify", new { text = Text, tasks = new[] { _task } });
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement result = body.GetProperty("results").GetProperty(_task);
        double[] p = [.. result.GetProperty("scores").EnumerateObject().Select(s => s.Value.GetDouble()).OrderDescending()];
        return (result.GetProperty("label").GetString()!, p[0], p[0] - p[1]);
    }

    [Theory]
    [InlineData("maxProbability")]
    [InlineData("margin")]
    public async Task The_fallback_fires_below_the_threshold_and_not_above_it(string rule)
    {
        (string top, double maxProbability, double margin) = await Unfallen();
        double measure = rule == "margin" ? margin : maxProbability;

        // Manifest threshold just above the measure: the rule fires.
        DeclareFallback(rule, Math.Min(1, measure + 1e-6));
        using ConfiguredApiFactory host = Host();
        HttpClient client = host.CreateClient();
        (HttpStatusCode status, JsonElement body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task } });
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement fired = body.GetProperty("results").GetProperty(_task);
        Assert.Equal("out_of_scope", fired.GetProperty("label").GetString());
        JsonElement fallback = fired.GetProperty("fallback");
        Assert.Equal(top, fallback.GetProperty("topLabel").GetString());
        Assert.Equal(rule, fallback.GetProperty("rule").GetString());
        Assert.Equal(measure, fallback.GetProperty("value").GetDouble(), 9);
        Assert.Equal(maxProbability, fired.GetProperty("score").GetDouble(), 12); // the model's own top score stays
        Assert.True(fired.GetProperty("scores").TryGetProperty(top, out _));

        // The request's own threshold just below the measure: the model's top label, no fallback member.
        (status, body) = await Post(client, "/classify", new
        {
            text = Text,
            tasks = new[] { _task },
            fallbackThresholds = new Dictionary<string, double> { [_task] = Math.Max(0, measure - 1e-6) },
        });
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement kept = body.GetProperty("results").GetProperty(_task);
        Assert.Equal(top, kept.GetProperty("label").GetString());
        Assert.False(kept.TryGetProperty("fallback", out _));

        // The batch endpoint applies the same override per task.
        (status, body) = await Post(client, "/classify/batch", new
        {
            inputs = new[] { new { text = Text }, new { text = Text } },
            tasks = new[] { _task },
            fallbackThresholds = new Dictionary<string, double> { [_task] = Math.Max(0, measure - 1e-6) },
        });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.All(body.GetProperty("results").EnumerateArray(), r => Assert.Equal(top, r.GetProperty(_task).GetProperty("label").GetString()));
    }

    [Fact]
    public async Task Energy_rule_reads_the_logsumexp_of_the_logits()
    {
        DeclareFallback("energy", 100); // every logsumexp of this tiny head is far below 100: always fires
        using ConfiguredApiFactory host = Host();
        HttpClient client = host.CreateClient();
        (_, JsonElement body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task } });
        JsonElement fallback = body.GetProperty("results").GetProperty(_task).GetProperty("fallback");
        double energy = fallback.GetProperty("value").GetDouble();

        (_, body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task }, fallbackThresholds = new Dictionary<string, double> { [_task] = energy - 1e-6 } });
        Assert.False(body.GetProperty("results").GetProperty(_task).TryGetProperty("fallback", out _));
        (_, body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task }, fallbackThresholds = new Dictionary<string, double> { [_task] = energy + 1e-6 } });
        Assert.True(body.GetProperty("results").GetProperty(_task).TryGetProperty("fallback", out _));
    }

    [Fact]
    public async Task Tasks_lists_the_fallback_and_its_range()
    {
        DeclareFallback("maxProbability", 0.5);
        using ConfiguredApiFactory host = Host();
        JsonElement tasks = await host.CreateClient().GetFromJsonAsync<JsonElement>("/tasks");
        JsonElement fallback = tasks.GetProperty("tasks").EnumerateArray().First(t => t.GetProperty("name").GetString() == _task).GetProperty("fallback");
        Assert.Equal("out_of_scope", fallback.GetProperty("label").GetString());
        Assert.Equal(0.5, fallback.GetProperty("threshold").GetDouble());
        Assert.Equal([0.0, 1.0], fallback.GetProperty("thresholdRange").EnumerateArray().Select(v => v.GetDouble()));
    }

    [Theory]
    [InlineData(1.5, "must be in [0, 1] for the maxProbability rule, got 1.5")]
    [InlineData(-0.1, "must be in [0, 1] for the maxProbability rule, got -0.1")]
    public async Task An_override_outside_the_rules_range_is_a_400_naming_the_task(double threshold, string message)
    {
        DeclareFallback("maxProbability", 0.5);
        using ConfiguredApiFactory host = Host();
        (HttpStatusCode status, JsonElement body) = await Post(host.CreateClient(), "/classify", new
        {
            text = Text,
            fallbackThresholds = new Dictionary<string, double> { [_task] = threshold },
        });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(message, body.GetProperty("errors").GetProperty($"fallbackThresholds.{_task}")[0].GetString());
        Assert.StartsWith($"fallbackThresholds.{_task}: ", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task An_override_for_a_task_without_a_fallback_or_an_unknown_task_is_a_400()
    {
        // The task without its fallback (as bundles made before the out-of-domain measure: they load unchanged).
        _bundle.EditManifest(m => m["tasks"]!.AsArray().First(t => (string?)t!["name"] == _task)!["output"]!.AsObject().Remove("fallback"));
        using ConfiguredApiFactory host = Host();
        HttpClient client = host.CreateClient();
        (HttpStatusCode status, JsonElement body) = await Post(client, "/classify/batch", new
        {
            inputs = new[] { new { text = Text } },
            fallbackThresholds = new Dictionary<string, double> { [_task] = 0.5, ["nope"] = 0.5 },
        });
        Assert.Equal(HttpStatusCode.BadRequest, status);
        JsonElement errors = body.GetProperty("errors");
        Assert.Equal($"task '{_task}' has no fallback to set a threshold for", errors.GetProperty($"fallbackThresholds.{_task}")[0].GetString());
        Assert.StartsWith("unknown task 'nope'", errors.GetProperty("fallbackThresholds.nope")[0].GetString());

        // Without a fallback, answers carry no fallback member.
        (status, body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task } });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.GetProperty("results").GetProperty(_task).TryGetProperty("fallback", out _));
    }

    [Fact]
    public async Task A_request_refused_for_its_shape_also_names_its_bad_thresholds()
    {
        // One answer names every problem: the shape's (checked first) and the thresholds', as the snapshot in service sees them.
        using ConfiguredApiFactory host = Host();
        HttpClient client = host.CreateClient();
        foreach (string path in new[] { "/classify", "/v2/classify" })
        {
            (HttpStatusCode status, JsonElement body) = await Post(client, path, new
            {
                text = "",
                fallbackThresholds = new Dictionary<string, double> { ["nope"] = 0.5 },
            });
            Assert.Equal(HttpStatusCode.BadRequest, status);
            JsonElement errors = body.GetProperty("errors");
            Assert.Equal(["text", "fallbackThresholds.nope"], errors.EnumerateObject().Select(e => e.Name));
            Assert.StartsWith("unknown task 'nope'", errors.GetProperty("fallbackThresholds.nope")[0].GetString());
        }
    }

    [Theory]
    [InlineData("rule", "\"median\"", "unknown rule 'median' (expected maxProbability | margin | energy | mahalanobis)")]
    [InlineData("threshold", "2", "must be in [0, 1] for rule maxProbability, not 2")]
    [InlineData("label", "\"\"", "must not be empty")]
    public async Task A_bad_fallback_in_the_manifest_stops_loading_naming_the_field(string field, string json, string message)
    {
        DeclareFallback("maxProbability", 0.5);
        int index = _bundle.ReadManifest()["tasks"]!.AsArray().Select(t => (string?)t!["name"]).ToList().IndexOf(_task);
        _bundle.EditManifest(m => m["tasks"]![index]!["output"]!["fallback"]![field] = JsonNode.Parse(json));

        BundleValidationException error = await _bundle.LoadFailsAsync();
        Assert.Equal($"tasks[{index}].output.fallback.{field}", error.Field);
        Assert.EndsWith(message, error.Message);
    }

    [Fact]
    public async Task The_calibrated_fixture_task_answers_by_its_distance_and_lists_the_calibration()
    {
        // The fixture as the toolkit calibrates it: mahalanobis rule; its 500 calibration examples (under 1,000) get the
        // log-normal curve and the default for few examples, 2% (training/mtbert/ood.py, FEW_EXAMPLES_REJECTION).
        using ConfiguredApiFactory host = Host();
        HttpClient client = host.CreateClient();
        JsonElement tasks = await client.GetFromJsonAsync<JsonElement>("/tasks");
        JsonElement info = tasks.GetProperty("tasks").EnumerateArray().First(t => t.GetProperty("name").GetString() == _task);
        JsonElement fallback = info.GetProperty("fallback");
        Assert.Equal("mahalanobis", fallback.GetProperty("rule").GetString());
        Assert.Equal(0.02, fallback.GetProperty("threshold").GetDouble());
        Assert.Contains("log-normal fit", fallback.GetProperty("calibration").GetProperty("method").GetString(), StringComparison.Ordinal);
        Assert.True(fallback.GetProperty("calibration").GetProperty("examples").GetInt32() > 0);
        Assert.InRange(fallback.GetProperty("expected").GetProperty("inScopeRejection").GetDouble(), 0.0, 0.05);
        Assert.True(info.GetProperty("temperature").GetDouble() > 0);
        Assert.True(info.GetProperty("servedByDefault").GetBoolean());

        // A request may aim at another rejection rate: at 1 every input is further than p = 1 and falls back;
        // the value is the p-value of its distance.
        (HttpStatusCode status, JsonElement body) = await Post(client, "/classify", new
        {
            text = Text,
            tasks = new[] { _task },
            fallbackThresholds = new Dictionary<string, double> { [_task] = 1.0 },
        });
        Assert.Equal(HttpStatusCode.OK, status);
        JsonElement fired = body.GetProperty("results").GetProperty(_task);
        Assert.Equal("out_of_scope", fired.GetProperty("label").GetString());
        double pValue = fired.GetProperty("fallback").GetProperty("value").GetDouble();
        Assert.InRange(pValue, double.Epsilon, 1.0 - 1e-12);

        // Just below its own p-value the input is kept.
        (_, body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task }, fallbackThresholds = new Dictionary<string, double> { [_task] = pValue * 0.999 } });
        Assert.False(body.GetProperty("results").GetProperty(_task).TryGetProperty("fallback", out _));
    }

    [Fact]
    public async Task A_task_not_served_by_default_answers_only_when_named()
    {
        _bundle.EditManifest(m => m["tasks"]!.AsArray().First(t => (string?)t!["name"] == _task)!["servedByDefault"] = false);
        using ConfiguredApiFactory host = Host();
        HttpClient client = host.CreateClient();

        (HttpStatusCode status, JsonElement body) = await Post(client, "/classify", new { text = Text });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.False(body.GetProperty("results").TryGetProperty(_task, out _));
        Assert.NotEmpty(body.GetProperty("results").EnumerateObject()); // the other single-sentence tasks answer

        (status, body) = await Post(client, "/classify", new { text = Text, tasks = new[] { _task } });
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.True(body.GetProperty("results").TryGetProperty(_task, out _));

        JsonElement tasks = await client.GetFromJsonAsync<JsonElement>("/tasks");
        Assert.False(tasks.GetProperty("tasks").EnumerateArray().First(t => t.GetProperty("name").GetString() == _task).GetProperty("servedByDefault").GetBoolean());
    }

    [Theory]
    [InlineData("remove", "tasks[{0}].head.outOfDomain")] // the rule reads a distance no output provides
    [InlineData("missing", "tasks[{0}].head.outOfDomain")] // an output the graph does not have
    [InlineData("curve", "tasks[{0}].output.fallback.calibration.pValues")] // a curve of the wrong length
    public async Task A_bad_distance_rule_stops_loading_naming_the_field(string damage, string field)
    {
        int index = _bundle.ReadManifest()["tasks"]!.AsArray().Select(t => (string?)t!["name"]).ToList().IndexOf(_task);
        _bundle.EditManifest(m =>
        {
            JsonNode task = m["tasks"]![index]!;
            switch (damage)
            {
                case "remove":
                    task["head"]!.AsObject().Remove("outOfDomain");
                    break;
                case "missing":
                    task["head"]!["outOfDomain"] = "no_such_output";
                    break;
                default:
                    task["output"]!["fallback"]!["calibration"]!["pValues"]!.AsArray().RemoveAt(0);
                    break;
            }
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();
        Assert.Equal(string.Format(System.Globalization.CultureInfo.InvariantCulture, field, index), error.Field);
    }

    [Fact]
    public async Task Only_classification_tasks_take_a_fallback()
    {
        string regression = TestBundle.RegressionTask.Name;
        int index = _bundle.ReadManifest()["tasks"]!.AsArray().Select(t => (string?)t!["name"]).ToList().IndexOf(regression);
        _bundle.EditManifest(m => m["tasks"]![index]!["output"]!["fallback"] = new JsonObject { ["label"] = "x", ["rule"] = "margin", ["threshold"] = 0.1 });

        BundleValidationException error = await _bundle.LoadFailsAsync();
        Assert.Equal($"tasks[{index}].output.fallback", error.Field);
    }

}
