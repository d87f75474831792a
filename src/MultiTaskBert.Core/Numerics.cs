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
}
