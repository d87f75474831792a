using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// Everything that differs between kinds of task head (manifest <c>output.kind</c>): how the
/// manifest's output section is read, what the head graph must output, how one row of that output
/// becomes the task's prediction and how the prediction is answered on the wire. One sealed
/// subclass per kind, listed in <see cref="HeadKindRegistry"/>; code outside this folder asks the
/// task's <see cref="TaskDefinition.Kind"/> and never compares kinds.
/// </summary>
public abstract class HeadKind
{
    /// <summary>The kind as the manifest's <c>output.kind</c> and <c>GET /tasks</c> write it.</summary>
    public abstract string Name { get; }

    /// <summary>The kind's answer record: one member of the <see cref="TaskResult"/> union (JSON and Swagger).</summary>
    public abstract Type ResultType { get; }

    /// <summary>The field under <c>tasks[i]</c> that the head output's width is checked against (named in errors).</summary>
    public abstract string WidthField { get; }

    /// <summary>Rank of the head graph's output: [batch, width] by default.</summary>
    public virtual int OutputRank => 2;

    /// <summary>
    /// The shape the head must output for <paramref name="rows"/> rows padded to <paramref name="sequence"/>
    /// tokens: [rows, width], or [rows, sequence, width] for per-token kinds (rank 3). Checked on every run.
    /// </summary>
    public long[] OutputShape(TaskDefinition task, int rows, int sequence) =>
        OutputRank == 3 ? [rows, sequence, OutputWidth(task)] : [rows, OutputWidth(task)];

    /// <summary>
    /// How many values of an output row <see cref="Predict(TaskDefinition, ReadOnlySpan{float}, EncodedInput, WordAlignment?)"/> reads for an input of <paramref name="tokens"/>
    /// tokens (per-token kinds read the input's own tokens, not the padding): each must be finite.
    /// </summary>
    public int ValuesRead(TaskDefinition task, int tokens) => OutputRank == 3 ? tokens * OutputWidth(task) : OutputWidth(task);

    /// <summary>Whether <see cref="Predict(TaskDefinition, ReadOnlySpan{float}, EncodedInput, WordAlignment?)"/> reads the words of the input's text (aligned once per input before the batch runs).</summary>
    public virtual bool NeedsWordAlignment => false;

    /// <summary>
    /// Whether a request without <c>tasks</c> runs tasks of this kind. False for kinds whose answer is
    /// large (an embedding): the default answer does not grow when a bundle gains one.
    /// </summary>
    public virtual bool InDefaultSelection => true;

    /// <summary>Whether the manifest may give this kind an <c>output.fallback</c>.</summary>
    public virtual bool HasFallback => false;

    /// <summary>Width of the head output's last axis that <paramref name="task"/>'s manifest promises.</summary>
    public virtual int OutputWidth(TaskDefinition task)
    {
        ArgumentNullException.ThrowIfNull(task);
        return task.Labels.Count;
    }

    /// <summary>
    /// Validates a task's manifest <paramref name="output"/> section (and what the kind asks of its
    /// <paramref name="input"/>); a failure is a <see cref="BundleValidationException"/> naming the
    /// field under <paramref name="at"/> (<c>tasks[i]</c>).
    /// </summary>
    public OutputSettings ReadOutput(TaskOutputManifest output, TaskInputKind input, string at)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (output.Fallback is not null && !HasFallback)
        {
            string having = string.Join(" | ", HeadKindRegistry.Kinds.Where(k => k.HasFallback).Select(k => k.Name));
            throw Invalid($"{at}.output.fallback", $"only {having} tasks have a fallback, not {Name} tasks");
        }

        return ReadKindOutput(output, input, at);
    }

    /// <summary>The kind's own checks of the output section (<see cref="ReadOutput"/> has done the shared ones).</summary>
    protected abstract OutputSettings ReadKindOutput(TaskOutputManifest output, TaskInputKind input, string at);

    /// <summary>
    /// One input's prediction from <paramref name="row"/>, the head's output for it (the padded
    /// sequence for per-token heads); <paramref name="alignment"/> is set when <see cref="NeedsWordAlignment"/>.
    /// </summary>
    public abstract TaskPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment);

    /// <summary>
    /// <see cref="Predict(TaskDefinition, ReadOnlySpan{float}, EncodedInput, WordAlignment?)"/> with the
    /// head's out-of-domain distance for the row (<c>head.outOfDomain</c>; null when the head has none),
    /// which only kinds with a distance-based fallback read.
    /// </summary>
    public virtual TaskPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, double? outOfDomainDistance, EncodedInput encoded, WordAlignment? alignment) =>
        Predict(task, row, encoded, alignment);

    /// <summary>
    /// The wire answer for a prediction of this kind; <paramref name="fallbackThreshold"/> is the
    /// request's own threshold for the task (null: the bundle's), read only by kinds with a fallback.
    /// </summary>
    public abstract TaskResult Answer(TaskPrediction prediction, double? fallbackThreshold = null);

    public override string ToString() => Name;

    /// <summary>A manifest error at <paramref name="field"/>.</summary>
    protected static BundleValidationException Invalid(string field, string problem) => new(BundleLoader.ManifestFileName, field, problem);

    /// <summary>The longest class label or tag.</summary>
    public const int MaxLabelChars = 200;

    /// <summary>
    /// At least <paramref name="minimum"/> labels (class labels, BIO tags), each 1-<see cref="MaxLabelChars"/>
    /// characters without control or format characters (NUL, ESC, right-to-left override), unique
    /// after NFC normalization and case folding (so no two labels look alike in an answer).
    /// </summary>
    protected static IReadOnlyList<string> RequireLabels(IReadOnlyList<string>? labels, string field, int minimum)
    {
        if (labels is null || labels.Count < minimum)
        {
            throw Invalid(field, $"needs at least {minimum} entries");
        }

        var folded = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Count; i++)
        {
            string label = labels[i] ?? "";
            if (string.IsNullOrWhiteSpace(label) || label.Length > MaxLabelChars)
            {
                throw Invalid(field, $"entry {i} must be 1-{MaxLabelChars} characters and not blank, is {label.Length}");
            }

            if (label.Any(c => char.GetUnicodeCategory(c) is System.Globalization.UnicodeCategory.Control or System.Globalization.UnicodeCategory.Format))
            {
                throw Invalid(field, $"entry {i} '{BundleValidationException.Printable(label)}' holds a control or format character");
            }

            if (!folded.Add(label.Normalize(System.Text.NormalizationForm.FormC).ToUpperInvariant()))
            {
                throw Invalid(field, $"entry {i} '{label}': entries must be unique (after NFC normalization and case folding)");
            }
        }

        return labels;
    }
}

/// <summary>A kind with its own prediction and answer types: the casts live here, once.</summary>
public abstract class HeadKind<TPrediction, TResult> : HeadKind
    where TPrediction : TaskPrediction
    where TResult : TaskResult
{
    public sealed override Type ResultType => typeof(TResult);

    public abstract override TPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment);

    public sealed override TaskResult Answer(TaskPrediction prediction, double? fallbackThreshold = null) => prediction switch
    {
        TPrediction own => Answer(own, fallbackThreshold),
        TaskFailure failure => failure.Answer(),
        _ => throw new ArgumentException($"A {Name} task cannot answer a {prediction?.GetType().Name ?? "null"}.", nameof(prediction)),
    };

    /// <inheritdoc cref="HeadKind.Answer(TaskPrediction, double?)"/>
    protected abstract TResult Answer(TPrediction prediction, double? fallbackThreshold);
}
