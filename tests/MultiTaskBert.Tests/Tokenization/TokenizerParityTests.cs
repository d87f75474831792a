using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Tokenization;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Tokenization;

public sealed class TokenizerParityTests
{
    private static readonly Lazy<BertInputEncoder> Encoder = new(() =>
        BertInputEncoder.Create(Path.Combine(TestBundle.Directory, TestBundle.Manifest.Tokenizer.VocabFile), TestBundle.Manifest.Tokenizer));

    [Theory]
    [MemberData(nameof(ParityCases))]
    public void Ids_equal_the_toolkit_reference_ids(int index)
    {
        ParityCase reference = ParityFile.Fixture.Cases[index];

        EncodedInput encoded = Encoder.Value.Encode(reference.Text, reference.TextPair);

        Assert.Equal(reference.InputIds, encoded.InputIds);
        Assert.Equal(reference.TokenTypeIds, encoded.TokenTypeIds);
    }

    public static TheoryData<int> ParityCases => ParityFile.CaseIndexes;

    [Theory]
    [InlineData("hello\tworld", "hello world")] // tab/newline are spaces, not deleted
    [InlineData("hello\r\nworld", "hello world")]
    [InlineData("HeLLo WORLD", "hello world")]
    [InlineData("caf\u00e9 na\u00efve", "cafe naive")] // accents stripped (composed input)
    [InlineData("cafe\u0301", "cafe")] // accents stripped (decomposed input)
    [InlineData("zero\u200bwidth", "zerowidth")] // format characters dropped
    [InlineData("a$b+c", "a $ b + c")] // ASCII symbols split like punctuation
    [InlineData("\u4e2d\u6587", "\u4e2d \u6587")] // CJK ideographs one by one
    [InlineData("\u0130STANBUL", "istanbul")] // Python lower-cases U+0130 to i + U+0307, the accent is then stripped
    [InlineData("\u039f\u0394\u039f\u03a3", "\u03bf\u03b4\u03bf\u03c2")] // final sigma, as Python's str.lower()
    [InlineData("\u03a3\u039f\u03a3 \u03a3", "\u03c3\u03bf\u03c2 \u03c3")]
    public void Normalization_matches_bert_uncased(string text, string equivalent)
    {
        Assert.Equal(Encoder.Value.Encode(equivalent).InputIds, Encoder.Value.Encode(text).InputIds);
    }

    [Fact]
    public void Typed_special_tokens_are_ordinary_text()
    {
        EncodedInput encoded = Encoder.Value.Encode("[SEP]");

        // The reference tokenizer splits a typed "[SEP]" into "[", "sep", "]": only the framing [SEP] has its id.
        Assert.Single(encoded.InputIds, id => id == encoded.InputIds[^1]);
        Assert.True(encoded.Length > 3);
    }

    [Fact]
    public void Single_sentences_are_truncated_to_the_max_length()
    {
        int max = Encoder.Value.MaxSequenceLength;
        string longText = string.Join(' ', Enumerable.Repeat("the", max * 2));

        EncodedInput encoded = Encoder.Value.Encode(longText);

        Assert.Equal(max, encoded.Length);
        Assert.All(encoded.TokenTypeIds, t => Assert.Equal(0, t));
    }

    [Fact]
    public void Pairs_are_truncated_longest_first()
    {
        int max = Encoder.Value.MaxSequenceLength;
        string longText = string.Join(' ', Enumerable.Repeat("the", max * 2));

        EncodedInput encoded = Encoder.Value.Encode(longText, "the the");

        Assert.Equal(max, encoded.Length);
        Assert.Equal(3, encoded.TokenTypeIds.Count(t => t == 1)); // the short pair (2 pieces + [SEP]) is kept whole
    }

    [Theory]
    [InlineData(5, 5, 6, 3, 3)] // tie: the second one loses first
    [InlineData(8, 2, 6, 4, 2)]
    [InlineData(2, 8, 6, 2, 4)]
    [InlineData(3, 2, 6, 3, 2)] // fits: untouched
    public void Longest_first_drops_from_the_longer_sequence(int first, int second, int budget, int keptFirst, int keptSecond)
    {
        List<int> a = [.. Enumerable.Range(0, first)];
        List<int> b = [.. Enumerable.Range(100, second)];

        BertInputEncoder.TruncateLongestFirst(a, b, budget);

        Assert.Equal(Enumerable.Range(0, keptFirst), a);
        Assert.Equal(Enumerable.Range(100, keptSecond), b);
    }

    [Fact]
    public void Token_batch_pads_to_the_longest_member()
    {
        EncodedInput shortInput = Encoder.Value.Encode("the");
        EncodedInput longInput = Encoder.Value.Encode("the the the the");

        TokenBatch batch = TokenBatch.Pad([shortInput, longInput], Encoder.Value.PaddingTokenId);

        Assert.Equal([2, longInput.Length], batch.Shape);
        Assert.Equal(shortInput.Length, batch.AttentionMask.Take(batch.SequenceLength).Sum());
        Assert.Equal(Encoder.Value.PaddingTokenId, batch.InputIds[batch.SequenceLength - 1]);
        Assert.Equal(longInput.Length, batch.AttentionMask.Skip(batch.SequenceLength).Sum());
    }
}
