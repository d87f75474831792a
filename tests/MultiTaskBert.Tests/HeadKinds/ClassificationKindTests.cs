using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Tests.HeadKinds;

public sealed class ClassificationKindTests
{
    private static readonly ClassificationKind Kind = ClassificationKind.Instance;

    private static TaskOutputManifest Output(IReadOnlyList<string>? labels, FallbackManifest? fallback = null) =>
        new() { Kind = "classification", Labels = labels, Fallback = fallback };

    private static FallbackManifest Fallback(string label = "oos", string rule = "maxProbability", double threshold = 0.7) =>
        new() { Label = label, Rule = rule, Threshold = threshold };

    private static TaskDefinition Task(FallbackManifest? fallback = null) => KindTasks.Define(Kind, Output(["neg", "pos", "neutral"], fallback));

    [Fact]
    public void Reads_labels_and_the_fallback()
    {
        TaskDefinition task = Task(Fallback());

        Assert.Equal(["neg", "pos", "neutral"], task.Labels);
        Assert.Equal(new FallbackPolicy("oos", FallbackRule.MaxProbability, 0.7), task.Fallback);
        Assert.Equal(3, task.OutputWidth);
        Assert.Equal("tasks[2].output.labels", task.OutputWidthField);
    }

    [Theory]
    [InlineData(null, "needs at least 2 entries")]
    [InlineData(new[] { "only" }, "needs at least 2 entries")]
    [InlineData(new[] { "a", "b", "a" }, "entries must be unique")]
    [InlineData(new[] { "Yes", "no", "yes" }, "entry 2 'yes': entries must be unique (after NFC normalization and case folding)")]
    [InlineData(new[] { "caf\u00e9", "cafe\u0301" }, "entry 1")]
    [InlineData(new[] { "a", "" }, "entry 1 must be 1-200 characters and not blank, is 0")]
    [InlineData(new[] { "a", "   " }, "not blank")]
    [InlineData(new[] { "a", "b\u0000" }, "entry 1 'b\\u0000' holds a control or format character")]
    [InlineData(new[] { "a\u001b[31m", "b" }, "entry 0")]
    [InlineData(new[] { "a", "\u202eb" }, "control or format character")]
    public void Bad_labels_name_the_labels_field(string[]? labels, string problem)
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(labels));

        Assert.Equal(("manifest.json", "tasks[2].output.labels"), (error.File, error.Field));
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void A_label_of_more_than_200_characters_is_refused()
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(["a", new string('b', 201)]));

        Assert.Contains("entry 1 must be 1-200 characters and not blank, is 201", error.Message);
    }

    [Theory]
    [InlineData("", "maxProbability", 0.5, "tasks[2].output.fallback.label", "must not be empty")]
    [InlineData("oos", "entropy", 0.5, "tasks[2].output.fallback.rule", "unknown rule 'entropy' (expected maxProbability | margin | energy | mahalanobis)")]
    [InlineData("oos", "maxProbability", 1.5, "tasks[2].output.fallback.threshold", "must be in [0, 1] for rule maxProbability, not 1.5")]
    [InlineData("oos", "energy", -101, "tasks[2].output.fallback.threshold", "must be in [-100, 100] for rule energy, not -101")]
    public void A_bad_fallback_names_its_field(string label, string rule, double threshold, string field, string problem)
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(["a", "b"], Fallback(label, rule, threshold)));

        Assert.Equal(("manifest.json", field), (error.File, error.Field));
        Assert.Contains(problem, error.Message);
    }

    private static FallbackManifest DistanceFallback(double threshold = 0.01) => new()
    {
        Label = "out_of_scope",
        Rule = "mahalanobis",
        Threshold = threshold,
        Calibration = new DistanceCalibrationManifest { Distances = [100, 200, 300], PValues = [0.1, 0.01, 0.001], Examples = 999, Method = "test" },
    };

    [Theory]
    [InlineData(150, false)] // p = 0.0316: as close as 3% of in-scope calibration examples
    [InlineData(250, true)] // p = 0.0032 < 0.01
    public void The_mahalanobis_rule_reads_the_distance_through_the_calibration_curve(double distance, bool fires)
    {
        TaskDefinition task = Task(DistanceFallback());
        var prediction = (ClassificationPrediction)Kind.Predict(task, [0f, 2f, 0f], distance, null!, null);
        var result = (ClassificationResult)Kind.Answer(prediction);

        Assert.Equal(fires ? "out_of_scope" : "pos", result.Label);
        Assert.Equal(fires, result.Fallback is not null);
        if (result.Fallback is { } fallback)
        {
            Assert.Equal(("pos", "mahalanobis", 0.01), (fallback.TopLabel, fallback.Rule, fallback.Threshold));
            Assert.Equal(Math.Exp(Math.Log(0.01) + (0.5 * Math.Log(0.1))), fallback.Value, 12);
        }

        // A request's own threshold is a rejection rate too: at 5% the closer input is turned away as well.
        Assert.Equal("out_of_scope", ((ClassificationResult)Kind.Answer(prediction, 0.05)).Label);
    }

    [Fact]
    public void The_mahalanobis_rule_without_its_curve_is_refused_naming_the_calibration()
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(["a", "b"], DistanceFallback() with { Calibration = null }));
        Assert.Equal("tasks[2].output.fallback.calibration", error.Field);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(101.0)]
    [InlineData(double.NaN)]
    public void A_temperature_outside_0_to_100_is_refused(double temperature)
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(["a", "b"]) with { Temperature = temperature });
        Assert.Equal("tasks[2].output.temperature", error.Field);
    }

    [Fact]
    public void The_temperature_divides_the_logits_before_the_softmax()
    {
        TaskDefinition task = KindTasks.Define(Kind, Output(["a", "b"]) with { Temperature = 2.0 });
        ClassificationPrediction prediction = Kind.Predict(task, [0f, 2f * MathF.Log(3f)], null!, null);

        Assert.Equal(0.75, prediction.Scores["b"], 6); // exp(ln 3) : exp(0) = 3 : 1
        Assert.Equal("b", prediction.Label);
    }

    [Fact]
    public void Predicts_the_softmax_and_its_top_label()
    {
        // exp(0) : exp(ln 3) : exp(0) = 1 : 3 : 1.
        float[] row = [0f, MathF.Log(3f), 0f];

        ClassificationPrediction prediction = Kind.Predict(Task(), row, null!, null);

        Assert.Equal("pos", prediction.Label);
        Assert.Equal(0.6, prediction.Score, 6);
        Assert.Equal(0.2, prediction.Scores["neg"], 6);
        Assert.Equal(0.2, prediction.Scores["neutral"], 6);
        Assert.Equal(row, prediction.Logits);
        Assert.Null(prediction.Fallback);
        Assert.Same(Kind, prediction.Kind);
    }

    [Fact]
    public void Ties_go_to_the_first_label_and_large_logits_do_not_overflow()
    {
        ClassificationPrediction tie = Kind.Predict(Task(), [2f, 2f, -1f], null!, null);
        ClassificationPrediction large = Kind.Predict(Task(), [1000f, 0f, 0f], null!, null);

        Assert.Equal("neg", tie.Label);
        Assert.Equal(tie.Scores["neg"], tie.Scores["pos"]);
        Assert.Equal(("neg", 1.0), (large.Label, large.Score));
    }

    [Fact]
    public void The_fallback_answers_when_the_top_probability_is_below_the_threshold()
    {
        ClassificationPrediction prediction = Kind.Predict(Task(Fallback(threshold: 0.7)), [0f, MathF.Log(3f), 0f], null!, null);

        var fired = Assert.IsType<ClassificationResult>(Kind.Answer(prediction));
        var kept = Assert.IsType<ClassificationResult>(Kind.Answer(prediction, fallbackThreshold: 0.5));

        Assert.Equal(0.6, prediction.Fallback!.Value, 6);
        Assert.Equal("oos", fired.Label);
        Assert.Equal(prediction.Score, fired.Score);
        Assert.Equal(new FallbackResult("pos", "maxProbability", prediction.Fallback.Value, 0.7), fired.Fallback);
        Assert.Equal(new ClassificationResult("pos", prediction.Score, prediction.Scores, null), kept);
    }

    [Fact]
    public void A_prediction_of_another_kind_is_refused()
    {
        RegressionPrediction other = new(1.0, [1f]);

        Assert.Throws<ArgumentException>(() => Kind.Answer(other));
    }
}
