using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Tests.HeadKinds;

public sealed class RegressionKindTests
{
    private static readonly RegressionKind Kind = RegressionKind.Instance;

    private static TaskOutputManifest Output(IReadOnlyList<double>? range = null) => new() { Kind = "regression", Range = range };

    [Fact]
    public void Reads_the_range_and_has_one_output()
    {
        TaskDefinition ranged = KindTasks.Define(Kind, Output([0, 5]));
        TaskDefinition open = KindTasks.Define(Kind, Output());

        Assert.Equal(new ValueRange(0, 5), ranged.Range);
        Assert.Null(open.Range);
        Assert.Empty(open.Labels);
        Assert.Equal((1, "tasks[2].output.kind"), (open.OutputWidth, open.OutputWidthField));
    }

    [Theory]
    [InlineData(new[] { 5.0, 1.0 })]
    [InlineData(new[] { 1.0 })]
    [InlineData(new[] { 0.0, 1.0, 2.0 })]
    [InlineData(new[] { double.NaN, 1.0 })]
    public void A_bad_range_names_the_range_field(double[] range)
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(range));

        Assert.Equal(("manifest.json", "tasks[2].output.range"), (error.File, error.Field));
        Assert.Contains("must be [min, max] with min <= max", error.Message);
    }

    [Fact]
    public void A_fallback_is_refused_naming_the_fallback_field()
    {
        BundleValidationException error = KindTasks.Refused(Kind,
            Output() with { Fallback = new FallbackManifest { Label = "oos", Rule = "energy", Threshold = 0 } });

        Assert.Equal(("manifest.json", "tasks[2].output.fallback"), (error.File, error.Field));
        Assert.Contains("only classification | examples tasks have a fallback, not regression tasks", error.Message);
    }

    [Theory]
    [InlineData(7.5f, 5.0)]
    [InlineData(-1f, 0.0)]
    [InlineData(2.5f, 2.5)]
    public void Values_are_clamped_to_the_range(float output, double expected)
    {
        RegressionPrediction prediction = Kind.Predict(KindTasks.Define(Kind, Output([0, 5])), [output], null!, null);

        Assert.Equal(expected, prediction.Value);
        Assert.Equal([output], prediction.Logits);
        Assert.Equal(new RegressionResult(expected), Kind.Answer(prediction));
    }

    [Fact]
    public void Without_a_range_the_value_is_the_output()
    {
        RegressionPrediction prediction = Kind.Predict(KindTasks.Define(Kind, Output()), [-42.5f], null!, null);

        Assert.Equal(-42.5, prediction.Value);
    }
}
