using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Tests.Api;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Bundles;

/// <summary>A pair task's <c>output.source</c> (issue #27 item 4): each bad one fails loading naming the file and the field.</summary>
public sealed class PairSourceValidationTests : IDisposable
{
    private readonly BundleCopy _bundle = new();

    public void Dispose() => _bundle.Dispose();

    private static int IndexOf(JsonObject manifest, string task) =>
        manifest["tasks"]!.AsArray().Select((t, i) => (t, i)).First(p => (string?)p.t!["name"] == task).i;

    [Fact]
    public async Task A_valid_source_loads_and_the_joint_way_needs_nothing_more()
    {
        _bundle.EditManifest(m =>
        {
            PairFromEmbeddingsTests.Source(m, "stsb", 4, 1);
            m["tasks"]![IndexOf(m, "rte")]!["output"]!["source"] = new JsonObject { ["way"] = "jointPass" };
        });

        ModelBundle bundle = await BundleLoader.LoadAsync(_bundle.Directory);

        Assert.True(bundle.Tasks.First(t => t.Name == "stsb").PairSource!.FromEmbeddings);
        Assert.False(bundle.Tasks.First(t => t.Name == "rte").PairSource!.FromEmbeddings);
    }

    public static TheoryData<string, string, string> BadSources => new()
    {
        // task, JSON merged into its output.source (null removes the member), field under tasks[i] named
        { "stsb", """{"way": "both"}""", "output.source.way" },
        { "stsb", """{"embedding": "nope"}""", "output.source.embedding" },
        { "stsb", """{"embedding": "sst2"}""", "output.source.embedding" },
        { "stsb", """{"embedding": null}""", "output.source.embedding" },
        { "stsb", """{"features": ["euclidean"]}""", "output.source.features" },
        { "stsb", """{"features": []}""", "output.source.features" },
        { "stsb", """{"weights": [1, 2]}""", "output.source.weights" },
        { "stsb", """{"weights": [1e400]}""", "output.source.weights" },
        { "stsb", """{"bias": null}""", "output.source.bias" },
        { "stsb", """{"bias": -1e400}""", "output.source.bias" },
        { "rte", "{}", "output.fallback" },
        { "sst2", "{}", "input" },
    };

    [Theory]
    [MemberData(nameof(BadSources))]
    public async Task A_bad_source_is_refused_naming_its_field(string task, string change, string field)
    {
        int index = -1;
        _bundle.EditManifest(m =>
        {
            index = IndexOf(m, task);
            JsonObject entry = PairFromEmbeddingsTests.Source(m, task, 4, 1);
            JsonObject source = entry["output"]!["source"]!.AsObject();
            foreach ((string key, JsonNode? value) in JsonNode.Parse(change)!.AsObject())
            {
                source[key] = value?.DeepClone();
            }
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal("manifest.json", error.File);
        Assert.StartsWith($"tasks[{index}].{field}", error.Field);
    }

    [Fact]
    public async Task The_joint_heads_temperature_beside_a_source_from_embeddings_is_refused()
    {
        int index = -1;
        _bundle.EditManifest(m =>
        {
            index = IndexOf(m, "rte");
            PairFromEmbeddingsTests.Source(m, "rte", 4, 1)["output"]!.AsObject().Remove("fallback");
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal($"tasks[{index}].output.temperature", error.Field);
    }

    [Fact]
    public async Task A_source_whose_embedding_task_is_gone_is_refused_naming_the_reader()
    {
        int index = -1;
        _bundle.EditManifest(m =>
        {
            PairFromEmbeddingsTests.Source(m, "stsb", 4, 1);
            m["tasks"]!.AsArray().RemoveAt(IndexOf(m, "embedding"));
            index = IndexOf(m, "stsb");
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal($"tasks[{index}].output.source.embedding", error.Field);
        Assert.Contains("embedding tasks: none", error.Message);
    }
}
