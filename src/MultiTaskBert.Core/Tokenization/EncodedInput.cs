namespace MultiTaskBert.Core.Tokenization;

/// <summary>Which text of a request a token came from.</summary>
public enum TokenSegment
{
    /// <summary>[CLS], [SEP].</summary>
    Special,
    Text,
    TextPair,
}

/// <summary>
/// A word piece with where it came from. <see cref="Range"/> indexes the <em>normalized</em> text of
/// its segment (what the BERT normalizer made of it); mapping back to the caller's characters is
/// needed for slot spans and comes with tagging support.
/// </summary>
public readonly record struct TokenInfo(int Id, string Value, TokenSegment Segment, Range Range);

/// <summary>One tokenized input: <c>[CLS] text [SEP] (textPair [SEP])</c>.</summary>
public sealed record EncodedInput(IReadOnlyList<int> InputIds, IReadOnlyList<int> TokenTypeIds, IReadOnlyList<TokenInfo> Tokens)
{
    public int Length => InputIds.Count;

    /// <summary>Tokens the input would have without truncation to the bundle's maximum sequence length.</summary>
    public int UntruncatedLength { get; init; }

    /// <summary>Whether tokens were cut to fit the maximum sequence length.</summary>
    public bool IsTruncated => UntruncatedLength > Length;
}
