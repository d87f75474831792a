namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// Maps an out-of-domain distance to the share of in-scope calibration examples at least as far
/// (a p-value): the toolkit scored in-scope examples the statistics were not fitted on and stored
/// points of that curve (manifest <c>output.fallback.calibration</c>). Between points log p is
/// linear in the distance; below the first point it rises linearly to p = 1 at distance 0; past
/// the last it keeps the last segment's slope, so a farther input always gets a smaller value.
/// </summary>
public sealed class DistanceCalibration
{
    private readonly double[] _distances;
    private readonly double[] _logP;

    private DistanceCalibration(double[] distances, double[] logP, int examples, string? method)
    {
        _distances = distances;
        _logP = logP;
        Examples = examples;
        Method = method;
    }

    /// <summary>In-scope examples behind the curve (informative).</summary>
    public int Examples { get; }

    /// <summary>How they were scored, e.g. "5-fold cross-fit on train" (informative).</summary>
    public string? Method { get; }

    /// <summary>
    /// Validates the manifest's curve: at least two points, equal lengths, finite, distances
    /// strictly ascending and ≥ 0, p-values in (0, 1] and non-increasing. Errors name <paramref name="field"/>.
    /// </summary>
    public static DistanceCalibration Read(DistanceCalibrationManifest? calibration, string field)
    {
        if (calibration?.Distances is not { } distances || calibration.PValues is not { } pValues)
        {
            throw Invalid(field, "the mahalanobis rule needs calibration.distances and calibration.pValues");
        }

        if (distances.Count < 2 || distances.Count > 4096)
        {
            throw Invalid($"{field}.distances", $"needs 2 to 4096 points, not {distances.Count}");
        }

        if (pValues.Count != distances.Count)
        {
            throw Invalid($"{field}.pValues", $"has {pValues.Count} values but calibration.distances has {distances.Count}");
        }

        for (int i = 0; i < distances.Count; i++)
        {
            if (!double.IsFinite(distances[i]) || distances[i] < 0 || (i > 0 && distances[i] <= distances[i - 1]))
            {
                throw Invalid($"{field}.distances[{i}]", "must be finite, ≥ 0 and strictly ascending");
            }

            if (!double.IsFinite(pValues[i]) || pValues[i] <= 0 || pValues[i] > 1 || (i > 0 && pValues[i] > pValues[i - 1]))
            {
                throw Invalid($"{field}.pValues[{i}]", "must be in (0, 1] and non-increasing");
            }
        }

        return new DistanceCalibration([.. distances], [.. pValues.Select(p => Math.Log(p))], calibration.Examples, calibration.Method);
    }

    /// <summary>The share of in-scope calibration examples at least as far as <paramref name="distance"/>, in (0, 1].</summary>
    public double PValue(double distance)
    {
        if (double.IsNaN(distance))
        {
            return 0; // no evidence of being in scope
        }

        int last = _distances.Length - 1;
        if (distance <= _distances[0])
        {
            // From (0, p = 1) to the first point.
            double first = Math.Exp(_logP[0]);
            return _distances[0] <= 0 ? first : 1 - ((1 - first) * Math.Max(distance, 0) / _distances[0]);
        }

        int upper = Array.BinarySearch(_distances, distance);
        if (upper >= 0)
        {
            return Math.Exp(_logP[upper]);
        }

        upper = Math.Min(~upper, last);
        int lower = upper - 1;
        double slope = (_logP[upper] - _logP[lower]) / (_distances[upper] - _distances[lower]);
        return Math.Exp(_logP[lower] + (slope * (distance - _distances[lower])));
    }

    private static BundleValidationException Invalid(string field, string problem) => new(BundleLoader.ManifestFileName, field, problem);
}
