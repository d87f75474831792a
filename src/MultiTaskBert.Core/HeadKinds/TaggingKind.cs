using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>
/// A BIO tag per whitespace word of a single text: the head outputs a logit per tag for every word
/// piece ([batch, sequence, tags]); <see cref="WordTagger"/> reads each word's first piece (argmax, or
/// the CRF's best path) and spells the entities.
/// </summary>
public sealed class TaggingKind : HeadKind<TaggingPrediction, TaggingResult>
{
    public static TaggingKind Instance { get; } = new();

    private TaggingKind()
    {
    }

    public override string Name => "tagging";
    public override string WidthField => "output.tags";
    public override int OutputRank => 3;
    public override bool NeedsWordAlignment => true;

    protected override OutputSettings ReadKindOutput(TaskOutputManifest output, TaskInputKind input, string at)
    {
        IReadOnlyList<string> tags = RequireLabels(output.Tags, $"{at}.output.tags", minimum: 1);
        if (!tags.Contains("O", StringComparer.Ordinal))
        {
            throw Invalid($"{at}.output.tags", "must hold \"O\" (the tag of words outside any entity)");
        }

        if (input != TaskInputKind.Single)
        {
            throw Invalid($"{at}.input", "a tagging task labels the words of a single text; input must be single");
        }

        return new OutputSettings(tags) { Crf = output.Crf is { } c ? ReadCrf(c, tags.Count, $"{at}.output.crf") : null };
    }

    public override TaggingPrediction Predict(TaskDefinition task, ReadOnlySpan<float> row, EncodedInput encoded, WordAlignment? alignment)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(encoded);
        // The row covers the padded sequence; only the input's own tokens are reported.
        ReadOnlySpan<float> tokensLogits = row[..(encoded.Length * task.Labels.Count)];
        WordAlignment words = alignment ?? throw new InvalidOperationException($"Task '{task.Name}' is a tagging task but its input has no word alignment.");
        TaggedText tagged = WordTagger.Tag(words, tokensLogits, task.Labels, task.Crf);
        return new TaggingPrediction(tagged.Words, tagged.Entities, tokensLogits.ToArray());
    }

    protected override TaggingResult Answer(TaggingPrediction prediction, double? fallbackThreshold) => new(
        [.. prediction.Words.Select(w => new WordTagResult(w.Word, w.Tag))],
        [.. prediction.Entities.Select(e => new EntityResult(e.Type, e.Text, e.Start, e.End))]);

    /// <summary>The CRF's matrices, checked to be tags × tags (transitions) and tags long (start, end).</summary>
    private static CrfParameters ReadCrf(CrfManifest crf, int tags, string field)
    {
        float[] start = RequireVector(crf.Start, tags, $"{field}.start");
        float[] end = RequireVector(crf.End, tags, $"{field}.end");
        if (crf.Transitions is null || crf.Transitions.Count != tags)
        {
            throw Invalid($"{field}.transitions", $"must be {tags} × {tags} (tags × tags), found {crf.Transitions?.Count ?? 0} rows");
        }

        var transitions = new float[tags][];
        for (int i = 0; i < tags; i++)
        {
            transitions[i] = RequireVector(crf.Transitions[i], tags, $"{field}.transitions[{i}]");
        }

        return new CrfParameters(transitions, start, end);
    }

    private static float[] RequireVector(IReadOnlyList<float>? values, int length, string field)
    {
        if (values is null || values.Count != length)
        {
            throw Invalid(field, $"must hold {length} values (one per tag), found {values?.Count ?? 0}");
        }

        if (values.Any(v => !float.IsFinite(v)))
        {
            throw Invalid(field, "values must be finite");
        }

        return [.. values];
    }
}

/// <summary>
/// A tagging prediction: one BIO tag per whitespace word of the text and the entities (slots) they
/// spell, with character offsets into the original text. <see cref="TaskPrediction.Logits"/> are the
/// per-piece logits of the encoding, row-major [sequence][tags].
/// </summary>
public sealed record TaggingPrediction(IReadOnlyList<WordTag> Words, IReadOnlyList<TaggedEntity> Entities, IReadOnlyList<float> Logits)
    : TaskPrediction(Logits)
{
    public override HeadKind Kind => TaggingKind.Instance;
}

/// <summary>A tagging task's answer: <c>tags</c> (one per whitespace word) and <c>entities</c>.</summary>
public sealed record TaggingResult(IReadOnlyList<WordTagResult> Tags, IReadOnlyList<EntityResult> Entities) : TaskResult;

/// <summary>A whitespace word of the request's text and its BIO tag.</summary>
public sealed record WordTagResult(string Word, string Tag);

/// <summary>A slot; <c>text</c> is the original substring <c>[start, end)</c> (character offsets, end exclusive).</summary>
public sealed record EntityResult(string Type, string Text, int Start, int End);
