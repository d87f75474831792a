using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Engine;

/// <summary>The engine on the fixture bundle: parity with PyTorch (parity.json), batching, task selection.</summary>
public sealed class MultiTaskEngineTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    [Theory]
    [MemberData(nameof(ParityCases))]
    public async Task Every_task_matches_pytorch_within_tolerance(int index)
    {
        ParityCase reference = ParityFile.Fixture.Cases[index];
        Assert.NotEmpty(reference.Outputs);

        RequestPredictions result = await fixture.Engine.ClassifyAsync(
            [new ClassifyInput(reference.Text, reference.TextPair)], [.. reference.Outputs.Keys]);

        foreach ((string task, float[] expected) in reference.Outputs)
        {
            IReadOnlyList<float> actual = result.Results[0][task].Logits;
            Assert.Equal(expected.Length, actual.Count);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.True(Math.Abs(expected[i] - actual[i]) <= ParityFile.Fixture.Tolerance,
                    $"case {index}, task {task}, logit {i}: PyTorch {expected[i]}, ONNX Runtime {actual[i]}");
            }
        }
    }

    public static TheoryData<int> ParityCases => ParityFile.CaseIndexes;

    /// <summary>
    /// A pair task computed from two embeddings (<c>output.source</c>; models/default's stsb and mrpc)
    /// answers the z that the toolkit computed from the two texts embedded alone through the bundle's
    /// graphs (parity.json), within a cosine tolerance times Σ|w|: 1e-5 on float trunks, 0.01 on int8
    /// ones, whose rounding flips (see bundle.py) moved the cosine by at most 0.0042 over
    /// models/default's 4 pair cases (z of mrpc: 0.029 at w = 6.84; stsb within 0.01 at w = 4.98).
    /// </summary>
    [Theory]
    [MemberData(nameof(ParityCases))]
    public async Task Every_pair_task_from_embeddings_matches_the_toolkit_within_its_tolerance(int index)
    {
        ParityCase reference = ParityFile.Fixture.Cases[index];
        string[] tasks = [.. TestBundle.Loaded.Tasks.Where(t => t.PairSource is { FromEmbeddings: true } && reference.Outputs.ContainsKey(t.Name)).Select(t => t.Name)];
        if (reference.TextPair is null || tasks.Length == 0)
        {
            return; // the fixture computes its pair tasks by the joint pass
        }

        RequestPredictions result = await fixture.Engine.ClassifyAsync([new ClassifyInput(reference.Text, reference.TextPair)], tasks);

        foreach (string task in tasks)
        {
            double cosineTolerance = ParityFile.Fixture.Tolerance < 0.01 ? 1e-5 : 0.01;
            double tolerance = cosineTolerance * TestBundle.Loaded.Tasks.First(t => t.Name == task).PairSource!.Weights.Sum(Math.Abs);
            float expected = reference.Outputs[task][^1], actual = result.Results[0][task].Logits[^1];
            Assert.True(Math.Abs(expected - actual) <= tolerance, $"case {index}, task {task}: z toolkit {expected}, service {actual} (tolerance {tolerance})");
        }
    }

    /// <summary>
    /// The out-of-domain distance (second head output) as PyTorch evaluated the exported graph, within a
    /// relative tolerance: 1e-4 for float trunks (float32 sums of a few hundred squares, stored to 4
    /// decimals), 5% for int8 trunks, whose rounding flips move hidden states (see bundle.py).
    /// </summary>
    [Theory]
    [MemberData(nameof(ParityCases))]
    public async Task Every_out_of_domain_distance_matches_pytorch_within_tolerance(int index)
    {
        ParityCase reference = ParityFile.Fixture.Cases[index];
        if (reference.Distances is not { Count: > 0 } distances)
        {
            return; // no calibrated task reads this kind of input
        }

        RequestPredictions result = await fixture.Engine.ClassifyAsync([new ClassifyInput(reference.Text, reference.TextPair)], [.. distances.Keys]);

        foreach ((string task, double expected) in distances)
        {
            double actual = ((ClassificationPrediction)result.Results[0][task]).OutOfDomainDistance!.Value;
            double tolerance = (ParityFile.Fixture.Tolerance < 0.01 ? 1e-4 : 0.05) * Math.Max(1, expected);
            Assert.True(Math.Abs(expected - actual) <= tolerance, $"case {index}, task {task}: PyTorch {expected}, ONNX Runtime {actual} (tolerance {tolerance})");
        }
    }

    /// <summary>Overheads: one bucket per distinct length, the default, one padded batch (default pass limit); and that batch cut into passes of at most 24 tokens.</summary>
    [Theory]
    [InlineData(0, 0)]
    [InlineData(64, 0)]
    [InlineData(1_000_000, 0)]
    [InlineData(1_000_000, 24)]
    public async Task Batching_with_padding_and_length_buckets_gives_the_same_logits_as_one_by_one(int bucketOverheadTokens, int maxPassTokens)
    {
        ParityCase[] cases = [.. ParityFile.Fixture.Cases.Where(c => c.TextPair is null)];
        string[] tasks = [.. TestBundle.Manifest.Tasks.Where(t => t.Input == "single").Select(t => t.Name)];
        using var sessions = new OnnxSessionFactory(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
        using var serving = new ServingParts(sessions, batching: new BatchingOptions { BucketOverheadTokens = bucketOverheadTokens, MaxPassTokens = maxPassTokens });
        await serving.Registry.LoadAsync(TestBundle.Directory);
        MultiTaskEngine engine = serving.Engine;

        RequestPredictions batch = await engine.ClassifyAsync([.. cases.Select(c => new ClassifyInput(c.Text))], tasks);

        for (int i = 0; i < cases.Length; i++)
        {
            RequestPredictions alone = await fixture.Engine.ClassifyAsync([new ClassifyInput(cases[i].Text)], tasks);
            foreach (string task in tasks)
            {
                IReadOnlyList<float> expected = alone.Results[0][task].Logits;
                IReadOnlyList<float> actual = batch.Results[i][task].Logits;
                Assert.Equal(expected.Count, actual.Count);
                for (int j = 0; j < expected.Count; j++)
                {
                    Assert.True(Math.Abs(expected[j] - actual[j]) <= 1e-4, $"input {i}, task {task}, logit {j}");
                }
            }
        }
    }

    [Fact]
    public async Task Explicit_single_and_pair_tasks_read_their_own_encoding()
    {
        ParityCase pairCase = ParityFile.Fixture.Cases.First(c => c.TextPair is not null);
        string single = TestBundle.SingleClassificationTask.Name;
        string pair = TestBundle.PairTask.Name;

        RequestPredictions both = await fixture.Engine.ClassifyAsync([new ClassifyInput(pairCase.Text, pairCase.TextPair)], [single, pair]);
        RequestPredictions singleOnly = await fixture.Engine.ClassifyAsync([new ClassifyInput(pairCase.Text)], [single]);

        // The single-sentence head sees "[CLS] text [SEP]" even when the request carries a pair.
        Assert.Equal(singleOnly.Results[0][single].Logits, both.Results[0][single].Logits);
        Assert.Equal(pairCase.Outputs[pair].Length, both.Results[0][pair].Logits.Count);
    }

    [Fact]
    public async Task Classification_scores_are_a_softmax_and_regression_is_clamped()
    {
        RequestPredictions result = await fixture.Engine.ClassifyAsync(
            [new ClassifyInput("a plain sentence", "another plain sentence")],
            [TestBundle.SingleClassificationTask.Name, TestBundle.RegressionTask.Name]);

        var classification = Assert.IsType<ClassificationPrediction>(result.Results[0][TestBundle.SingleClassificationTask.Name]);
        Assert.Equal(1.0, classification.Scores.Values.Sum(), 6);
        Assert.Equal(classification.Scores.Values.Max(), classification.Score);
        Assert.Equal(classification.Scores.MaxBy(s => s.Value).Key, classification.Label);

        var regression = Assert.IsType<RegressionPrediction>(result.Results[0][TestBundle.RegressionTask.Name]);
        // Every bundle this suite runs on (the fixture, models/default) gives its regression task a range.
        IReadOnlyList<double> range = Assert.IsAssignableFrom<IReadOnlyList<double>>(TestBundle.RegressionTask.Output.Range);
        Assert.InRange(regression.Value, range[0], range[1]);
    }

    [Fact]
    public async Task Unknown_task_names_the_field()
    {
        var error = await Assert.ThrowsAsync<InvalidClassifyRequestException>(() =>
            fixture.Engine.ClassifyAsync([new ClassifyInput("hello")], [TestBundle.SingleClassificationTask.Name, "no-such-task"]));

        Assert.Equal("tasks[1]", error.Field);
    }

    [Fact]
    public async Task Pair_task_without_pair_names_the_field()
    {
        var error = await Assert.ThrowsAsync<InvalidClassifyRequestException>(() =>
            fixture.Engine.ClassifyAsync([new ClassifyInput("hello", "there"), new ClassifyInput("hello")], [TestBundle.PairTask.Name]));

        Assert.Equal("inputs[1].textPair", error.Field);
    }

    [Fact]
    public async Task A_one_input_body_names_its_fields_without_the_inputs_level()
    {
        var error = await Assert.ThrowsAsync<InvalidClassifyRequestException>(() =>
            fixture.Engine.ClassifyAsync(new ClassifyQuery([new ClassifyInput("hello")], [TestBundle.PairTask.Name], Fields: RequestFieldNames.OneInput)));

        Assert.Equal("textPair", error.Field);
    }

    [Fact]
    public async Task Fallback_thresholds_are_checked_by_the_engine_against_its_snapshot_with_every_problem()
    {
        var thresholds = new Dictionary<string, double> { ["no-such-task"] = 0.5, [TestBundle.RegressionTask.Name] = 0.5 };

        var error = await Assert.ThrowsAsync<InvalidClassifyRequestException>(() =>
            fixture.Engine.ClassifyAsync(new ClassifyQuery([new ClassifyInput("hello")], null, thresholds)));

        Assert.Equal(["fallbackThresholds.no-such-task", $"fallbackThresholds.{TestBundle.RegressionTask.Name}"], error.Errors.Keys);
        Assert.Equal($"task '{TestBundle.RegressionTask.Name}' has no fallback to set a threshold for", error.Errors[$"fallbackThresholds.{TestBundle.RegressionTask.Name}"].Single());
    }

    [Fact]
    public async Task A_cancelled_request_stops_with_operation_cancelled()
    {
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            fixture.Engine.ClassifyAsync([new ClassifyInput("hello")], null, cancelled.Token));
    }
}
