using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Inference;

/// <summary>
/// The bundle's CUDA graphs (<c>trunk.float16</c>, <c>head.float</c>): chosen by device, validated
/// naming the field, optional for older bundles, and run for real (on the CPU here; on CUDA, with
/// every float node on the GPU, where one exists).
/// </summary>
public sealed class CudaGraphTests
{
    private static OnnxSessionFactory Factory(GraphPrecision precision, InferenceDevice device = InferenceDevice.Cpu) =>
        new(new InferenceOptions { Device = device, Precision = precision }, NullLogger<OnnxSessionFactory>.Instance);

    private static async Task<(ServingParts Serving, OnnxSessionFactory Sessions)> LoadAsync(string bundle, GraphPrecision precision)
    {
        OnnxSessionFactory sessions = Factory(precision);
        var serving = new ServingParts(sessions);
        try
        {
            await serving.Registry.LoadAsync(bundle);
            return (serving, sessions);
        }
        catch
        {
            serving.Dispose();
            sessions.Dispose();
            throw;
        }
    }

    private static bool FixtureHasFloat16 => TestBundle.Manifest.Trunk.Float16 is not null;

    [Fact]
    public void The_fixture_carries_a_float16_trunk()
    {
        // The rest of this class needs one: `mtbert fixtures` writes it (add-cuda-trunk on the fixture).
        Assert.True(FixtureHasFloat16 || Environment.GetEnvironmentVariable(TestBundle.OverrideVariable) is { Length: > 0 });
    }

    [Fact]
    public async Task Auto_on_cpu_serves_the_default_trunk_and_heads()
    {
        (ServingParts serving, OnnxSessionFactory sessions) = await LoadAsync(TestBundle.Directory, GraphPrecision.Auto);
        using (sessions)
        using (serving)
        {
            MultiTaskEngine engine = serving.Engine;
            Assert.False(engine.Current!.UsesFloat16Graphs);
            Assert.Equal(TestBundle.Manifest.Trunk.File, engine.Current.TrunkFile);
        }
    }

    [Fact]
    public async Task Float16_graphs_run_and_agree_with_the_default_ones_within_the_recorded_difference()
    {
        if (!FixtureHasFloat16)
        {
            return;
        }

        (ServingParts referenceServing, OnnxSessionFactory referenceSessions) = await LoadAsync(TestBundle.Directory, GraphPrecision.Default);
        (ServingParts float16Serving, OnnxSessionFactory float16Sessions) = await LoadAsync(TestBundle.Directory, GraphPrecision.Float16);
        using (referenceSessions)
        using (referenceServing)
        using (float16Sessions)
        using (float16Serving)
        {
            MultiTaskEngine reference = referenceServing.Engine, float16 = float16Serving.Engine;
            Assert.True(float16.Current!.UsesFloat16Graphs);
            Assert.Equal(TestBundle.Manifest.Trunk.Float16!.File, float16.Current.TrunkFile);
            ClassifyInput[] inputs = [new("wake me up at 7 am tomorrow"), new("It's a charming and often affecting journey.")];
            RequestPredictions expected = await reference.ClassifyAsync(inputs, null);
            RequestPredictions actual = await float16.ClassifyAsync(inputs, null);

            // ONNX Runtime's CPU provider computes most float16 nodes in float32 between casts, so the
            // logits differ from the default graphs' by the float16 rounding of weights and some
            // activations: small for the fixture (the toolkit recorded trunk.float16.maxParityLogitDifference).
            double largest = 0;
            for (int i = 0; i < inputs.Length; i++)
            {
                foreach ((string task, TaskPrediction prediction) in expected.Results[i])
                {
                    IReadOnlyList<float> other = actual.Results[i][task].Logits;
                    Assert.Equal(prediction.Logits.Count, other.Count);
                    largest = Math.Max(largest, prediction.Logits.Zip(other, (a, b) => Math.Abs((double)a - b)).Max());
                }
            }

            Assert.True(largest > 0, "the float16 graphs ran (their answers are not bit-identical)");
            Assert.InRange(largest, 0, 0.05);
        }
    }

    [Fact]
    public async Task Float16_precision_without_a_float16_trunk_stops_the_load_naming_the_field()
    {
        using var bundle = new BundleCopy();
        bundle.EditManifest(m => m["trunk"]!.AsObject().Remove("float16"));
        using OnnxSessionFactory sessions = Factory(GraphPrecision.Float16);
        using var serving = new ServingParts(sessions);

        var error = await Assert.ThrowsAsync<BundleValidationException>(() => serving.Registry.LoadAsync(bundle.Directory));

        Assert.Equal(("manifest.json", "trunk.float16"), (error.File, error.Field));
        Assert.Contains("add-cuda-trunk", error.Message);
    }

    [Fact]
    public async Task A_bundle_without_cuda_graphs_still_loads()
    {
        using var bundle = new BundleCopy();
        bundle.EditManifest(m =>
        {
            m["trunk"]!.AsObject().Remove("float16");
            foreach (var task in m["tasks"]!.AsArray())
            {
                task!["head"]!.AsObject().Remove("float");
            }
        });

        ModelBundle loaded = await BundleLoader.LoadAsync(bundle.Directory);

        Assert.Null(loaded.Float16TrunkPath);
        Assert.All(loaded.Tasks, t => Assert.Null(t.Head.FloatVariant));
    }

    [Fact]
    public async Task A_float16_trunk_whose_hash_differs_fails_naming_the_field()
    {
        if (!FixtureHasFloat16)
        {
            return;
        }

        using var bundle = new BundleCopy();
        bundle.EditManifest(m => m["trunk"]!["float16"]!["sha256"] = new string('0', 64));

        var error = await Assert.ThrowsAsync<BundleValidationException>(() => BundleLoader.LoadAsync(bundle.Directory));

        Assert.Equal((TestBundle.Manifest.Trunk.Float16!.File, "trunk.float16.sha256"), (error.File, error.Field));
    }

    [Fact]
    public async Task A_missing_float16_trunk_file_fails_naming_the_field()
    {
        using var bundle = new BundleCopy();
        bundle.EditManifest(m => m["trunk"]!["float16"] = new System.Text.Json.Nodes.JsonObject { ["file"] = "gone.onnx", ["sha256"] = new string('0', 64) });

        var error = await Assert.ThrowsAsync<BundleValidationException>(() => BundleLoader.LoadAsync(bundle.Directory));

        Assert.Equal(("gone.onnx", "trunk.float16.file"), (error.File, error.Field));
    }

    [Fact]
    public async Task A_float_head_whose_hash_differs_fails_naming_the_field()
    {
        using var bundle = new BundleCopy();
        bundle.EditManifest(m => m["tasks"]![1]!["head"]!["float"] = new System.Text.Json.Nodes.JsonObject
        {
            ["file"] = m["tasks"]![1]!["head"]!["file"]!.GetValue<string>(),
            ["sha256"] = new string('0', 64),
        });

        var error = await Assert.ThrowsAsync<BundleValidationException>(() => BundleLoader.LoadAsync(bundle.Directory));

        Assert.Equal("tasks[1].head.float.sha256", error.Field);
    }

    [Fact]
    public async Task A_float_head_is_served_with_the_float16_trunk_only()
    {
        if (!FixtureHasFloat16)
        {
            return;
        }

        // The fixture's heads have no int8 matmuls, so none has a float graph: point one at a copy of itself.
        using var bundle = new BundleCopy();
        string head = TestBundle.Manifest.Tasks[0].Head.File;
        File.Copy(bundle.PathOf(head), bundle.PathOf("heads/copy.float.onnx"));
        bundle.EditManifest(m => m["tasks"]![0]!["head"]!["float"] = new System.Text.Json.Nodes.JsonObject
        {
            ["file"] = "heads/copy.float.onnx",
            ["sha256"] = bundle.Sha256Of("heads/copy.float.onnx"),
        });
        ModelBundle loaded = await BundleLoader.LoadAsync(bundle.Directory);
        HeadGraph graph = loaded.Tasks[0].Head;

        Assert.Equal("heads/copy.float.onnx", graph.For(float16Graphs: true).RelativePath);
        Assert.Equal(head, graph.For(float16Graphs: false).RelativePath);
    }

    /// <summary>
    /// On CUDA no float node of the trunk or of any head may run on the CPU (ONNX Runtime's profiler
    /// names each node's provider; int64 shape arithmetic that ONNX Runtime keeps on the CPU by design
    /// is allowed). Set MULTITASKBERT_TEST_BUNDLE to check another bundle (bench/gpu does, for the default one).
    /// </summary>
    [CudaFact]
    public void On_cuda_every_float_node_of_trunk_and_heads_runs_on_the_gpu()
    {
        using OnnxSessionFactory sessions = Factory(GraphPrecision.Auto, InferenceDevice.Cuda);
        ModelBundle bundle = BundleLoader.LoadAsync(TestBundle.Directory).GetAwaiter().GetResult();
        string work = Path.Combine(Path.GetTempPath(), "mtbert-profile-" + Guid.NewGuid().ToString("N"));
        IReadOnlyDictionary<string, IReadOnlyList<NodeRun>> runs = NodePlacement.ProfileBundle(sessions, bundle, work);
        Directory.Delete(work, recursive: true);
        Assert.True(GraphSelection.ServesFloat16(bundle, sessions.Precision, sessions.Target) || !bundle.Manifest.Trunk.Int8Matmuls, "an int8 bundle without trunk.float16 cannot run on CUDA alone");
        Assert.All(runs, graph => Assert.NotEmpty(graph.Value));
        IReadOnlyList<NodeRun> fallbacks = NodePlacement.FloatFallbacks(runs.Values.SelectMany(r => r));
        Assert.True(fallbacks.Count == 0, "float nodes on the CPU: " + string.Join(", ", fallbacks.Select(f => $"{f.Node} ({f.OpType}, {f.Provider})")));
    }
}
