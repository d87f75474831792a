namespace MultiTaskBert.Core.Bundles;

/// <summary>What a fallback rule measures on a classification head's output; the rule fires when the measure is below the threshold.</summary>
public enum FallbackRule
{
    /// <summary>The top class probability (softmax); thresholds in [0, 1].</summary>
    MaxProbability,

    /// <summary>Top probability minus the second; thresholds in [0, 1].</summary>
    Margin,

    /// <summary>log Σ exp(logits), the negative free energy (Liu et al., 2020): low for inputs unlike the training data; thresholds in [-100, 100].</summary>
    Energy,

    /// <summary>
    /// The share of in-scope calibration examples at least as far from the task's training data as
    /// this input (a p-value of the head's out-of-domain distance, <see cref="DistanceCalibration"/>):
    /// low for inputs unlike the training data; the threshold is the in-scope rejection rate aimed at, in [0, 1].
    /// </summary>
    Mahalanobis,
}

/// <summary>
/// A classification task's "I did not understand" answer: when <see cref="Rule"/>'s measure of the
/// head's output is below <see cref="Threshold"/>, the task answers <see cref="Label"/> instead of
/// its top class (manifest <c>output.fallback</c>; docs/bundle-format.md).
/// </summary>
public sealed record FallbackPolicy(string Label, FallbackRule Rule, double Threshold)
{
    /// <summary>Manifest spellings of the rules, in <see cref="FallbackRule"/> order.</summary>
    public static readonly IReadOnlyList<string> RuleNames = ["maxProbability", "margin", "energy", "mahalanobis"];

    /// <summary>How the toolkit chose the threshold on dev (informative, from the manifest).</summary>
    public IReadOnlyDictionary<string, double>? Selection { get; init; }

    /// <summary>Rule <see cref="FallbackRule.Mahalanobis"/>: distance → p-value.</summary>
    public DistanceCalibration? Calibration { get; init; }

    /// <summary>Informative: the in-scope rejection rate expected at the threshold (and its bound), from the manifest.</summary>
    public IReadOnlyDictionary<string, double>? Expected { get; init; }

    /// <summary>Whether the rule reads the head's out-of-domain distance output rather than its logits.</summary>
    public bool ReadsDistance => Rule == FallbackRule.Mahalanobis;

    /// <summary>The thresholds that make sense for <paramref name="rule"/> (a manifest or a request outside it is refused).</summary>
    public static (double Min, double Max) ThresholdRange(FallbackRule rule) => rule == FallbackRule.Energy ? (-100, 100) : (0, 1);

    /// <summary>Whether <paramref name="threshold"/> lies in <see cref="ThresholdRange"/> (NaN does not).</summary>
    public static bool InRange(FallbackRule rule, double threshold)
    {
        (double min, double max) = ThresholdRange(rule);
        return threshold >= min && threshold <= max;
    }

    public static FallbackRule? ParseRule(string? name)
    {
        int index = name is null ? -1 : RuleNames.ToList().IndexOf(name);
        return index < 0 ? null : (FallbackRule)index;
    }

    public string RuleName => RuleNames[(int)Rule];

    /// <summary>
    /// The rule's measure of one output: <paramref name="logits"/>, their softmax
    /// <paramref name="probabilities"/> and, for a distance rule, the head's out-of-domain <paramref name="distance"/>.
    /// </summary>
    public double Measure(ReadOnlySpan<float> logits, IReadOnlyList<double> probabilities, double? distance = null)
    {
        switch (Rule)
        {
            case FallbackRule.Mahalanobis:
                return Calibration!.PValue(distance ?? throw new InvalidOperationException("the mahalanobis rule needs the head's out-of-domain output"));
            case FallbackRule.MaxProbability:
                return probabilities.Max();
            case FallbackRule.Margin:
            {
                double first = double.NegativeInfinity, second = double.NegativeInfinity;
                foreach (double p in probabilities)
                {
                    if (p > first)
                    {
                        (first, second) = (p, first);
                    }
                    else if (p > second)
                    {
                        second = p;
                    }
                }

                return first - second;
            }

            default:
            {
                double max = double.NegativeInfinity;
                foreach (float l in logits)
                {
                    max = Math.Max(max, l);
                }

                double sum = 0;
                foreach (float l in logits)
                {
                    sum += Math.Exp(l - max);
                }

                return max + Math.Log(sum);
            }
        }
    }
}

/// <summary>A fallback rule's measure of one prediction; <see cref="Fires"/> decides at a threshold (the manifest's, or a request's own).</summary>
public sealed record FallbackMeasure(FallbackPolicy Policy, double Value)
{
    public bool Fires(double threshold) => Value < threshold;
}
