using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;
using MultiTaskBert.Core.Tagging;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Tagging;

/// <summary>The fixture's tagging task (with a CRF) served end to end: word tags equal the ones PyTorch decoded.</summary>
public sealed class TaggingParityTests(EngineFixture fixture) : IClassFixture<EngineFixture>
{
    private static string Task => TestBundle.TaggingTask.Name;

    public static TheoryData<int> TaggedCases
    {
        get
        {
            var data = new TheoryData<int>();
            for (int i = 0; i < ParityFile.Fixture.Cases.Count; i++)
            {
                if (ParityFile.Fixture.Cases[i].Tags?.ContainsKey(Task) == true)
                {
                    data.Add(i);
                }
            }

            return data;
        }
    }

    [Fact]
    public void The_fixture_tags_every_single_text_case_with_a_crf()
    {
        Assert.NotNull(TestBundle.TaggingTask.Output.Crf);
        Assert.All(ParityFile.Fixture.Cases.Where(c => c.TextPair is null), c => Assert.True(c.Tags?.ContainsKey(Task)));
    }

    [Theory]
    [MemberData(nameof(TaggedCases))]
    public async Task Word_tags_match_pytorch(int index)
    {
        ParityCase reference = ParityFile.Fixture.Cases[index];

        RequestPredictions result = await fixture.Engine.ClassifyAsync([new ClassifyInput(reference.Text)], [Task]);

        var tagging = Assert.IsType<TaggingPrediction>(result.Results[0][Task]);
        Assert.Equal(reference.Text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries), tagging.Words.Select(w => w.Word));
        Assert.Equal(reference.Tags![Task], tagging.Words.Select(w => w.Tag));
        foreach (TaggedEntity entity in tagging.Entities)
        {
            Assert.Equal(reference.Text[entity.Start..entity.End], entity.Text);
        }
    }

    [Fact]
    public async Task Tagging_runs_by_default_on_single_texts_only()
    {
        RequestPredictions result = await fixture.Engine.ClassifyAsync([new ClassifyInput("wake me up at 7 am"), new ClassifyInput("a", "b")], tasks: null);

        Assert.IsType<TaggingPrediction>(result.Results[0][Task]);
        Assert.False(result.Results[1].ContainsKey(Task));
    }

    [Fact]
    public async Task Long_input_truncated_words_read_O()
    {
        // The fixture encodes at most 32 pieces: words past the 30th piece are cut.
        string text = string.Join(" ", Enumerable.Range(0, 60).Select(i => "w"));

        RequestPredictions result = await fixture.Engine.ClassifyAsync([new ClassifyInput(text)], [Task]);

        var tagging = Assert.IsType<TaggingPrediction>(result.Results[0][Task]);
        Assert.Equal(60, tagging.Words.Count);
        Assert.All(tagging.Words.Skip(30), w => Assert.Equal("O", w.Tag));
        Assert.All(tagging.Entities, e => Assert.True(e.End <= 2 * 30));
    }
}
