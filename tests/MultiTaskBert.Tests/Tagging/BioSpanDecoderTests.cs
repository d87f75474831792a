using MultiTaskBert.Core.Tagging;

namespace MultiTaskBert.Tests.Tagging;

/// <summary>BIO → entities as conlleval (and the toolkit's <c>bio_spans</c>) reads them.</summary>
public sealed class BioSpanDecoderTests
{
    private static string Spans(params string[] tags) =>
        string.Join(" ", BioSpanDecoder.Decode(tags).Select(s => $"{s.Type}:{s.FirstWord}-{s.LastWord}"));

    [Fact]
    public void B_then_I_of_the_same_type_is_one_entity() => Assert.Equal("time:1-2", Spans("O", "B-time", "I-time", "O"));

    [Fact]
    public void I_without_B_starts_an_entity() => Assert.Equal("time:1-2", Spans("O", "I-time", "I-time", "O"));

    [Fact]
    public void I_at_the_very_start_starts_an_entity() => Assert.Equal("city:0-0", Spans("I-city", "O"));

    [Fact]
    public void Adjacent_entities_of_the_same_type_stay_apart() => Assert.Equal("city:0-0 city:1-2", Spans("B-city", "B-city", "I-city"));

    [Fact]
    public void An_entity_at_the_end_is_closed() => Assert.Equal("date:2-3", Spans("O", "O", "B-date", "I-date"));

    [Fact]
    public void A_type_change_inside_I_starts_a_new_entity() => Assert.Equal("time:0-1 date:2-2", Spans("B-time", "I-time", "I-date", "O"));

    [Fact]
    public void O_only_and_empty_have_no_entities()
    {
        Assert.Equal("", Spans("O", "O"));
        Assert.Equal("", Spans());
    }
}
