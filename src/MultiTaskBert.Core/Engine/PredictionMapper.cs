using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>Turns one row of head output into the task's answer: softmax, clamp or word tags and entities.</summary>
internal static class PredictionMapper
{
    /// <param name="task">The task whose head produced <paramref name="row"/>.</param>
    /// <param name="row">The head's output for this input (padded sequence for tagging); the part that is the input's own is copied as the logits.</param>
    /// <param name="encoded">The encoding the row was computed from.</param>
    /// <param name="alignment">The input's word alignment; required for tagging tasks, null otherwise.</param>
    public static TaskPrediction Map(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment)
    {
        switch (task.OutputKind)
        {
            case TaskOutputKind.Classification:
            {
                double[] probabilities = Softmax(row);
                int best = Numerics.ArgMax<double>(probabilities);
                var scores = new Dictionary<string, double>(task.Labels.Count, StringComparer.Ordinal);
                for (int i = 0; i < probabilities.Length; i++)
                {
                    scores[task.Labels[i]] = probabilities[i];
                }

                FallbackMeasure? fallback = task.Fallback is { } policy ? new FallbackMeasure(policy, policy.Measure(row, probabilities)) : null;
                return new ClassificationPrediction(task.Labels[best], probabilities[best], scores, row.ToArray(), fallback);
            }

            case TaskOutputKind.Regression:
            {
                double value = row[0];
                return new RegressionPrediction(task.Range?.Clamp(value) ?? value, row.ToArray());
            }

            case TaskOutputKind.Tagging:
            {
                // The row covers the padded sequence; only the input's own tokens are reported.
                ReadOnlySpan<float> tokensLogits = row[..(encoded.Length * task.Labels.Count)];
                WordAlignment words = alignment ?? throw new InvalidOperationException($"Task '{task.Name}' is a tagging task but its input has no word alignment.");
                TaggedText tagged = WordTagger.Tag(words, tokensLogits, task.Labels, task.Crf);
                return new TaggingPrediction(tagged.Words, tagged.Entities, tokensLogits.ToArray());
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
}
