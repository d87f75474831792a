using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>Turns one row of head output into the task's answer: softmax, clamp or per-token argmax.</summary>
internal static class PredictionMapper
{
    public static TaskPrediction Map(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded)
    {
        switch (task.OutputKind)
        {
            case TaskOutputKind.Classification:
            {
                double[] probabilities = Softmax(row);
                int best = ArgMax(probabilities);
                var scores = new Dictionary<string, double>(task.Labels.Count, StringComparer.Ordinal);
                for (int i = 0; i < probabilities.Length; i++)
                {
                    scores[task.Labels[i]] = probabilities[i];
                }

                return new ClassificationPrediction(task.Labels[best], probabilities[best], scores, row.ToArray());
            }

            case TaskOutputKind.Regression:
            {
                double value = row[0];
                return new RegressionPrediction(task.Range?.Clamp(value) ?? value, row.ToArray());
            }

            case TaskOutputKind.Tagging:
            {
                int width = task.Labels.Count;
                // The row covers the padded sequence; only the input's own tokens are reported.
                ReadOnlySpan<float> tokensLogits = row[..(encoded.Length * width)];
                var tags = new List<TokenTag>(encoded.Length);
                for (int t = 0; t < encoded.Length; t++)
                {
                    TokenInfo token = encoded.Tokens[t];
                    if (token.Segment == TokenSegment.Special)
                    {
                        continue;
                    }

                    double[] probabilities = Softmax(tokensLogits.Slice(t * width, width));
                    int best = ArgMax(probabilities);
                    tags.Add(new TokenTag(token.Value, task.Labels[best], probabilities[best], token.Segment, token.Range));
                }

                return new TaggingPrediction(tags, tokensLogits.ToArray());
            }

            default:
                throw new InvalidOperationException($"Unhandled output kind {task.OutputKind}.");
        }
    }

    internal static double[] Softmax(ReadOnlySpan<float> logits)
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
            result[i] = Math.Exp(logits[i] - max);
            sum += result[i];
        }

        for (int i = 0; i < result.Length; i++)
        {
            result[i] /= sum;
        }

        return result;
    }

    private static int ArgMax(double[] values)
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
