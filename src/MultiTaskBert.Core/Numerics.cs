using System.Numerics;

namespace MultiTaskBert.Core;

/// <summary>Small numeric helpers shared by the output decoders.</summary>
internal static class Numerics
{
    /// <summary>Index of the largest value; the lowest index on ties, as numpy/torch argmax.</summary>
    public static int ArgMax<T>(ReadOnlySpan<T> values)
        where T : IComparisonOperators<T, T, bool>
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }

        return best;
    }

    /// <summary>
    /// Probabilities from logits divided by <paramref name="temperature"/>, computed in double after
    /// subtracting the largest logit (no overflow).
    /// </summary>
    public static double[] Softmax(ReadOnlySpan<float> logits, double temperature = 1)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits)
        {
            max = Math.Max(max, l);
        }

        var result = new double[logits.Length];
        double sum = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            result[i] = Math.Exp((logits[i] - max) / temperature);
            sum += result[i];
        }

        for (int i = 0; i < result.Length; i++)
        {
            result[i] /= sum;
        }

        return result;
    }
}
