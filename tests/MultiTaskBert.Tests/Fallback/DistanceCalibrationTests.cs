using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Tests.Fallback;

/// <summary>
/// The mahalanobis rule's reading of a distance: the manifest's curve (distance → share of in-scope
/// calibration examples at least as far) interpolated as the toolkit's <c>DistanceCalibration.p_value</c>
/// does, and every malformed curve refused naming its field.
/// </summary>
public sealed class DistanceCalibrationTests
{
    private const string Field = "tasks[0].output.fallback.calibration";

    private static DistanceCalibration Curve(double[] distances, double[] pValues) =>
        DistanceCalibration.Read(new DistanceCalibrationManifest { Distances = distances, PValues = pValues, Examples = 1000, Method = "test" }, Field);

    [Fact]
    public void Points_are_exact_and_log_p_is_linear_between_them()
    {
        DistanceCalibration curve = Curve([100, 200, 300], [0.1, 0.01, 0.001]);
        Assert.Equal(0.1, curve.PValue(100), 12);
        Assert.Equal(0.01, curve.PValue(200), 12);
        Assert.Equal(Math.Sqrt(0.1 * 0.01), curve.PValue(150), 12); // geometric mean halfway
    }

    [Fact]
    public void Beyond_the_last_point_the_value_keeps_falling_at_the_last_slope()
    {
        DistanceCalibration curve = Curve([100, 200, 300], [0.1, 0.01, 0.001]);
        Assert.Equal(0.0001, curve.PValue(400), 12);
        Assert.True(curve.PValue(10_000) < curve.PValue(400));
    }

    [Fact]
    public void Below_the_first_point_it_rises_linearly_to_one_at_distance_zero()
    {
        DistanceCalibration curve = Curve([100, 200], [0.5, 0.01]);
        Assert.Equal(1.0, curve.PValue(0), 12);
        Assert.Equal(0.75, curve.PValue(50), 12);
        Assert.Equal(1.0, curve.PValue(-3), 12);
    }

    [Fact]
    public void A_nan_distance_is_no_evidence_of_being_in_scope() => Assert.Equal(0, Curve([1, 2], [0.5, 0.1]).PValue(double.NaN));

    public static TheoryData<double[], double[], string> Malformed => new()
    {
        { [1], [0.5], $"{Field}.distances" },
        { [1, 2, 3], [0.5, 0.1], $"{Field}.pValues" },
        { [1, double.PositiveInfinity], [0.5, 0.1], $"{Field}.distances[1]" },
        { [2, 1], [0.5, 0.1], $"{Field}.distances[1]" },
        { [-1, 1], [0.5, 0.1], $"{Field}.distances[0]" },
        { [1, 2], [0.5, double.NaN], $"{Field}.pValues[1]" },
        { [1, 2], [0.1, 0.5], $"{Field}.pValues[1]" },
        { [1, 2], [1.5, 0.5], $"{Field}.pValues[0]" },
        { [1, 2], [0.5, 0], $"{Field}.pValues[1]" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void A_malformed_curve_is_refused_naming_the_field(double[] distances, double[] pValues, string field)
    {
        BundleValidationException error = Assert.Throws<BundleValidationException>(() => Curve(distances, pValues));
        Assert.Equal(field, error.Field);
    }

    [Fact]
    public void A_missing_curve_is_refused_naming_the_calibration()
    {
        BundleValidationException error = Assert.Throws<BundleValidationException>(() => DistanceCalibration.Read(null, Field));
        Assert.Equal(Field, error.Field);
    }
}
