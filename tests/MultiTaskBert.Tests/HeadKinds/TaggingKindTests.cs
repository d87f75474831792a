using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Tests.HeadKinds;

public sealed class TaggingKindTests
{
    private static readonly TaggingKind Kind = TaggingKind.Instance;
    private static readonly string[] Tags = ["B-city", "I-city", "O"];
    private const string Text = "fly to new york";

    private static TaskOutputManifest Output(IReadOnlyList<string>? tags = null, CrfManifest? crf = null) =>
        new() { Kind = "tagging", Tags = tags ?? Tags, Crf = crf };

    private static CrfManifest Crf(float[]? start = null, float[]? end = null, float[][]? transitions = null) => new()
    {
        Start = start ?? new float[3],
        End = end ?? new float[3],
        Transitions = transitions ?? [new float[3], new float[3], new float[3]],
    };

    /// <summary>The encoding of <see cref="Text"/> ([CLS] fly to new york [SEP]): only its length is read.</summary>
    private static readonly EncodedInput Encoded = new(new int[6], new int[6], []);

    private static readonly WordAlignment Words = WordAlignment.Create(Text, Encoded.Length, _ => 1);

    /// <summary>A head row over a sequence padded to 8 positions: "new york" is a city, the rest O.</summary>
    private static float[] Row()
    {
        var row = new float[8 * Tags.Length];
        for (int position = 0; position < 8; position++)
        {
            int tag = position switch { 3 => 0, 4 => 1, _ => 2 };
            row[position * Tags.Length + tag] = 4f;
        }

        return row;
    }

    [Fact]
    public void Reads_tags_and_the_crf()
    {
        TaskDefinition task = KindTasks.Define(Kind, Output(crf: Crf(start: [1, 2, 3])));

        Assert.Equal(Tags, task.Labels);
        Assert.Equal([1f, 2f, 3f], task.Crf!.Start);
        Assert.Equal((3, "tasks[2].output.tags"), (task.OutputWidth, task.OutputWidthField));
    }

    [Theory]
    [InlineData(new string[0], "needs at least 1 entries")]
    [InlineData(new[] { "B-city", "I-city" }, "must hold \"O\"")]
    [InlineData(new[] { "O", "B-city", "O" }, "entries must be unique")]
    public void Bad_tags_name_the_tags_field(string[] tags, string problem)
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(tags));

        Assert.Equal(("manifest.json", "tasks[2].output.tags"), (error.File, error.Field));
        Assert.Contains(problem, error.Message);
    }

    [Fact]
    public void A_pair_input_names_the_input_field()
    {
        BundleValidationException error = KindTasks.Refused(Kind, Output(), TaskInputKind.Pair);

        Assert.Equal(("manifest.json", "tasks[2].input"), (error.File, error.Field));
        Assert.Contains("input must be single", error.Message);
    }

    [Fact]
    public void A_bad_crf_names_the_matrix()
    {
        Assert.Equal("tasks[2].output.crf.start", KindTasks.Refused(Kind, Output(crf: Crf(start: [1, 2]))).Field);
        Assert.Equal("tasks[2].output.crf.end", KindTasks.Refused(Kind, Output(crf: Crf(end: [0, float.NaN, 0]))).Field);
        Assert.Equal("tasks[2].output.crf.transitions", KindTasks.Refused(Kind, Output(crf: Crf(transitions: [new float[3]]))).Field);
        Assert.Equal("tasks[2].output.crf.transitions[1]",
            KindTasks.Refused(Kind, Output(crf: Crf(transitions: [new float[3], new float[2], new float[3]]))).Field);
    }

    [Fact]
    public void A_fallback_is_refused_naming_the_fallback_field()
    {
        BundleValidationException error = KindTasks.Refused(Kind,
            Output() with { Fallback = new FallbackManifest { Label = "O", Rule = "margin", Threshold = 0.1 } });

        Assert.Equal(("manifest.json", "tasks[2].output.fallback"), (error.File, error.Field));
        Assert.Contains("not tagging tasks", error.Message);
    }

    [Fact]
    public void Predicts_word_tags_and_entities_from_the_inputs_own_tokens()
    {
        TaggingPrediction prediction = Kind.Predict(KindTasks.Define(Kind, Output()), Row(), Encoded, Words);

        Assert.Equal(["O", "O", "B-city", "I-city"], prediction.Words.Select(w => w.Tag));
        Assert.Equal([new TaggedEntity("city", "new york", 7, 15)], prediction.Entities);
        Assert.Equal(Row()[..(6 * Tags.Length)], prediction.Logits); // the padding rows are not the input's
        var answer = Assert.IsType<TaggingResult>(Kind.Answer(prediction));
        Assert.Equal([new("fly", "O"), new("to", "O"), new("new", "B-city"), new("york", "I-city")], answer.Tags);
        Assert.Equal([new EntityResult("city", "new york", 7, 15)], answer.Entities);
    }

    [Fact]
    public void The_crf_decodes_when_the_task_has_one()
    {
        // A start score that outweighs the emissions: the CRF path opens with a city, argmax would not.
        TaggingPrediction prediction = Kind.Predict(KindTasks.Define(Kind, Output(crf: Crf(start: [100, 0, 0]))), Row(), Encoded, Words);

        Assert.Equal("B-city", prediction.Words[0].Tag);
    }

    [Fact]
    public void Without_the_word_alignment_there_is_nothing_to_tag()
    {
        Assert.Throws<InvalidOperationException>(() => Kind.Predict(KindTasks.Define(Kind, Output()), Row(), Encoded, null));
    }
}
