using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Bundles;

/// <summary>Each case corrupts one thing in a copy of the fixture; loading must fail naming the file and the field.</summary>
public sealed class BundleValidationTests : IDisposable
{
    private readonly BundleCopy _bundle = new();

    public void Dispose() => _bundle.Dispose();

    private static JsonObject Task(JsonObject manifest, int index) => manifest["tasks"]!.AsArray()[index]!.AsObject();


    [Fact]
    public async Task The_fixture_itself_loads()
    {
        ModelBundle bundle = await BundleLoader.LoadAsync(_bundle.Directory);

        Assert.Equal(TestBundle.Manifest.Tasks.Count, bundle.Tasks.Count);
        Assert.False(bundle.Manifest.Trunk.Int8Matmuls); // absent in the fixture: a float trunk
    }

    [Fact]
    public async Task Int8_trunk_flag_is_read_and_a_wrong_type_is_named()
    {
        _bundle.EditManifest(m => m["trunk"]!.AsObject()["int8Matmuls"] = true);
        Assert.True((await BundleLoader.LoadAsync(_bundle.Directory)).Manifest.Trunk.Int8Matmuls);

        _bundle.EditManifest(m => m["trunk"]!.AsObject()["int8Matmuls"] = "yes");
        BundleValidationException error = await _bundle.LoadFailsAsync();
        Assert.Equal(("manifest.json", "trunk.int8Matmuls"), (error.File, error.Field));
    }

    [Fact]
    public async Task Missing_manifest()
    {
        File.Delete(_bundle.PathOf("manifest.json"));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal("manifest.json", error.File);
        Assert.Contains("not found", error.Message);
    }

    [Fact]
    public async Task Bad_json()
    {
        File.WriteAllText(_bundle.PathOf("manifest.json"), "{ \"formatVersion\": 1, \"name\": ");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal("manifest.json", error.File);
        Assert.Contains("invalid manifest JSON", error.Message);
    }

    [Fact]
    public async Task Wrong_json_type_names_the_field()
    {
        _bundle.EditManifest(m => Task(m, 0)["branchLayer"] = "deep");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].branchLayer"), (error.File, error.Field));
    }

    [Fact]
    public async Task Missing_required_field_is_named()
    {
        _bundle.EditManifest(m => Task(m, 0)["head"]!.AsObject().Remove("sha256"));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].head.sha256"), (error.File, error.Field));
    }

    [Fact]
    public async Task Unsupported_format_version()
    {
        _bundle.EditManifest(m => m["formatVersion"] = 2);

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "formatVersion"), (error.File, error.Field));
    }

    [Fact]
    public async Task Missing_head_file()
    {
        string head = (string)Task(_bundle.ReadManifest(), 0)["head"]!["file"]!;
        File.Delete(_bundle.PathOf(head));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((head, "tasks[0].head.file"), (error.File, error.Field));
        Assert.Contains("not found", error.Message);
    }

    [Fact]
    public async Task Missing_vocab_file()
    {
        File.Delete(_bundle.PathOf(TestBundle.Manifest.Tokenizer.VocabFile));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tokenizer.VocabFile, "tokenizer.vocabFile"), (error.File, error.Field));
    }

    [Fact]
    public async Task Path_leaving_the_bundle()
    {
        _bundle.EditManifest(m => m["trunk"]!["file"] = "../trunk.onnx");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "trunk.file"), (error.File, error.Field));
        Assert.Contains("leaves the bundle", error.Message);
    }

    [Fact]
    public async Task Trunk_hash_mismatch()
    {
        File.AppendAllText(_bundle.PathOf(TestBundle.Manifest.Trunk.File), "tampered");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Trunk.File, "trunk.sha256"), (error.File, error.Field));
        Assert.Contains("SHA-256 mismatch", error.Message);
    }

    [Theory]
    [InlineData("transitions", "transitions")]
    [InlineData("transitions-row", "transitions[2]")]
    [InlineData("start", "start")]
    [InlineData("end", "end")]
    public async Task Tagging_crf_of_the_wrong_shape_names_the_field(string corrupt, string field)
    {
        int index = TestBundle.Manifest.Tasks.ToList().IndexOf(TestBundle.TaggingTask);
        _bundle.EditManifest(m =>
        {
            JsonObject crf = Task(m, index)["output"]!["crf"]!.AsObject();
            JsonArray target = corrupt switch
            {
                "transitions-row" => crf["transitions"]![2]!.AsArray(),
                _ => crf[corrupt]!.AsArray(),
            };
            target.RemoveAt(target.Count - 1);
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((BundleLoader.ManifestFileName, $"tasks[{index}].output.crf.{field}"), (error.File, error.Field));
    }

    [Fact]
    public async Task Tagging_without_an_outside_tag()
    {
        int index = TestBundle.Manifest.Tasks.ToList().IndexOf(TestBundle.TaggingTask);
        _bundle.EditManifest(m =>
        {
            JsonArray tags = Task(m, index)["output"]!["tags"]!.AsArray();
            tags[tags.Select(t => t!.GetValue<string>()).ToList().IndexOf("O")] = "B-zzz";
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((BundleLoader.ManifestFileName, $"tasks[{index}].output.tags"), (error.File, error.Field));
    }

    [Fact]
    public async Task Head_hash_mismatch()
    {
        _bundle.EditManifest(m => Task(m, 1)["head"]!["sha256"] = new string('0', 64));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tasks[1].Head.File, "tasks[1].head.sha256"), (error.File, error.Field));
    }

    [Fact]
    public async Task Head_from_other_pretrained_weights()
    {
        _bundle.EditManifest(m => Task(m, 0)["pretrainedFingerprint"] = new string('f', 64));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].pretrainedFingerprint"), (error.File, error.Field));
        Assert.Contains("other pretrained weights", error.Message);
    }

    [Fact]
    public async Task Head_branching_deeper_than_the_trunk()
    {
        _bundle.EditManifest(m => Task(m, 0)["branchLayer"] = TestBundle.Manifest.Trunk.NumLayers + 1);

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].branchLayer"), (error.File, error.Field));
        Assert.Contains("deeper than the trunk", error.Message);
    }

    [Fact]
    public async Task Branch_layer_without_trunk_output()
    {
        int[] exported = [.. TestBundle.Manifest.Trunk.Outputs.Select(o => o.Layer)];
        int? missing = Enumerable.Range(1, TestBundle.Manifest.Trunk.NumLayers).Cast<int?>().FirstOrDefault(l => !exported.Contains(l!.Value));
        if (missing is null)
        {
            _bundle.EditManifest(m => m["trunk"]!["outputs"]!.AsArray().RemoveAt(0));
            missing = exported[0];
        }

        int layer = missing.Value;
        int taskIndex = 0;
        _bundle.EditManifest(m => Task(m, taskIndex)["branchLayer"] = layer);

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal("manifest.json", error.File);
        Assert.EndsWith("branchLayer", error.Field);
    }

    [Fact]
    public async Task Label_count_different_from_head_output_width()
    {
        int index = TestBundle.Manifest.Tasks.ToList().FindIndex(t => t.Output.Kind == "classification");
        _bundle.EditManifest(m => Task(m, index)["output"]!["labels"]!.AsArray().Add("one-too-many"));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tasks[index].Head.File, $"tasks[{index}].output.labels"), (error.File, error.Field));
    }

    [Fact]
    public async Task Head_io_names_different_from_the_graph()
    {
        _bundle.EditManifest(m => Task(m, 0)["head"]!["inputs"]!["hiddenStates"] = "not_an_input");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tasks[0].Head.File, "tasks[0].head.inputs.hiddenStates"), (error.File, error.Field));
    }

    [Fact]
    public async Task Head_graph_input_missing_from_the_manifest()
    {
        int index = TestBundle.Manifest.Tasks.ToList().FindIndex(t => t.Head.Inputs.AttentionMask is not null);
        _bundle.EditManifest(m => Task(m, index)["head"]!["inputs"]!["attentionMask"] = null);

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tasks[index].Head.File, $"tasks[{index}].head.inputs"), (error.File, error.Field));
    }

    // Heads carry where they belong in their ONNX metadata (mtbert.*); an entry that disagrees is refused.
    private static int FirstBranchingAt(int layer) => TestBundle.Manifest.Tasks.ToList().FindIndex(t => t.BranchLayer == layer && t.Input == "single" && t.Output.Kind == "classification");

    [Fact]
    public async Task Head_trained_on_another_branch_layer()
    {
        int index = FirstBranchingAt(1);
        _bundle.EditManifest(m => OutOfDomainEntries.Strip(Task(m, index))["branchLayer"] = 2); // the trunk outputs layer 2 too: only the metadata tells

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tasks[index].Head.File, $"tasks[{index}].branchLayer"), (error.File, error.Field));
        Assert.Contains("mtbert.branchLayer is '1', the manifest entry says '2'", error.Message);
    }

    [Fact]
    public async Task Head_trained_on_another_input_kind()
    {
        int index = FirstBranchingAt(1);
        _bundle.EditManifest(m => Task(m, index)["input"] = "pair");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((TestBundle.Manifest.Tasks[index].Head.File, $"tasks[{index}].input"), (error.File, error.Field));
        Assert.Contains("mtbert.input is 'single'", error.Message);
    }

    [Fact]
    public async Task Head_trained_on_another_trunk()
    {
        TaskManifest task = TestBundle.Manifest.Tasks[0];
        string fingerprint = TestBundle.Manifest.Trunk.Pretrained.Fingerprint;
        _bundle.PatchHead(task.Head.File, fingerprint, new string([.. fingerprint.Reverse()]));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal((task.Head.File, "tasks[0].pretrainedFingerprint"), (error.File, error.Field));
        Assert.Contains("mtbert.pretrainedFingerprint", error.Message);
    }

    [Fact]
    public async Task Heads_without_placement_metadata_still_load()
    {
        // Older bundles' heads have no mtbert.* keys (renamed away here): the entry's claims cannot be
        // checked, so even an entry that moved the head to another layer loads, as before.
        foreach (TaskManifest task in TestBundle.Manifest.Tasks)
        {
            foreach (string key in new[] { "mtbert.branchLayer", "mtbert.input", "mtbert.pretrainedFingerprint" })
            {
                _bundle.PatchHead(task.Head.File, key, "legacy" + key["mtbert".Length..]);
            }
        }

        _bundle.EditManifest(m => OutOfDomainEntries.Strip(Task(m, FirstBranchingAt(1)))["branchLayer"] = 2);

        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
        using var serving = new ServingParts(sessions);
        await serving.Registry.LoadAsync(_bundle.Directory);

        Assert.True(serving.Engine.IsReady);
    }

    [Fact]
    public async Task Duplicate_task()
    {
        _bundle.EditManifest(m => Task(m, 1)["name"] = (string)Task(m, 0)["name"]!);

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[1].name"), (error.File, error.Field));
        Assert.Contains("duplicate", error.Message);
    }

    [Fact]
    public async Task Malformed_task_name()
    {
        _bundle.EditManifest(m => Task(m, 0)["name"] = "Not A Name");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].name"), (error.File, error.Field));
    }

    [Fact]
    public async Task Unknown_output_kind()
    {
        _bundle.EditManifest(m => Task(m, 0)["output"]!["kind"] = "ranking");

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].output.kind"), (error.File, error.Field));
        Assert.Contains("unknown kind 'ranking'", error.Message);
    }

    [Fact]
    public async Task Unknown_input_kind()
    {
        _bundle.EditManifest(m => Task(m, 0)["input"]!.ReplaceWith("triple"));

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal(("manifest.json", "tasks[0].input"), (error.File, error.Field));
    }

    [Fact]
    public async Task Tagging_tasks_are_accepted_and_checked_against_their_tags()
    {
        // A tagging task whose head is a classification head: width = tags count must still hold.
        int index = TestBundle.Manifest.Tasks.ToList().FindIndex(t => t.Output.Kind == "classification" && t.Input == "single");
        int width = TestBundle.Manifest.Tasks[index].Output.Labels!.Count;
        _bundle.EditManifest(m =>
        {
            JsonObject output = Task(m, index)["output"]!.AsObject();
            output["kind"] = "tagging";
            output.Remove("labels");
            output.Remove("fallback"); // a classification task's own members (the fixture's are calibrated)
            output.Remove("temperature");
            output["tags"] = new JsonArray([.. Enumerable.Range(0, width + 1).Select(i => (JsonNode)$"T{i}")]);
        });

        BundleValidationException error = await _bundle.LoadFailsAsync();

        Assert.Equal($"tasks[{index}].output.tags", error.Field);
    }
}
