using System.IO.Compression;
using Microsoft.ML.Tokenizers;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Tokenization;

/// <summary>
/// Turns a text (or text pair) into BERT model inputs with Microsoft.ML.Tokenizers' WordPiece
/// <see cref="BertTokenizer"/>: [CLS]/[SEP] framing, token type ids, and longest-first truncation
/// of pairs to the bundle's maximum sequence length. Thread-safe.
/// </summary>
public sealed class BertInputEncoder
{
    private readonly BertTokenizer _tokenizer;

    private BertInputEncoder(BertTokenizer tokenizer, int maxSequenceLength)
    {
        _tokenizer = tokenizer;
        MaxSequenceLength = maxSequenceLength;
    }

    public int MaxSequenceLength { get; }

    public int PaddingTokenId => _tokenizer.PaddingTokenId;

    public static BertInputEncoder Create(string vocabPath, TokenizerManifest settings)
    {
        var options = new BertOptions
        {
            // The reference does not treat "[SEP]" typed by a user as a special token.
            SplitOnSpecialTokens = false,
            ApplyBasicTokenization = true,
            LowerCaseBeforeTokenization = settings.Lowercase,
            RemoveNonSpacingMarks = settings.StripAccents,
            IndividuallyTokenizeCjk = true,
            Normalizer = new BertUncasedNormalizer(settings.Lowercase, settings.StripAccents),
            // The normalizer already isolated punctuation with spaces. The library's punctuation
            // pre-tokenizer would drop symbols such as '$' that BERT keeps as tokens.
            PreTokenizer = PreTokenizer.CreateWhiteSpace(),
        };
        using Stream vocab = OpenVocabulary(vocabPath);
        return new BertInputEncoder(BertTokenizer.Create(vocab, options), settings.MaxSequenceLength);
    }

    private static Stream OpenVocabulary(string vocabPath)
    {
        FileStream file = File.OpenRead(vocabPath);
        return vocabPath.EndsWith(".gz", StringComparison.OrdinalIgnoreCase)
            ? new GZipStream(file, CompressionMode.Decompress)
            : file;
    }

    public EncodedInput Encode(string text, string? textPair = null)
    {
        List<TokenInfo> first = Tokenize(text, TokenSegment.Text);
        List<TokenInfo>? second = textPair is null ? null : Tokenize(textPair, TokenSegment.TextPair);
        int untruncated = first.Count + (second is null ? 2 : second.Count + 3);
        if (second is null)
        {
            Truncate(first, MaxSequenceLength - 2);
        }
        else
        {
            TruncateLongestFirst(first, second, MaxSequenceLength - 3);
        }

        int length = first.Count + 2 + (second is null ? 0 : second.Count + 1);
        var tokens = new List<TokenInfo>(length);
        var typeIds = new List<int>(length);

        tokens.Add(Special(_tokenizer.ClassificationTokenId, _tokenizer.ClassificationToken));
        tokens.AddRange(first);
        tokens.Add(Special(_tokenizer.SeparatorTokenId, _tokenizer.SeparatorToken));
        typeIds.AddRange(Enumerable.Repeat(0, tokens.Count));
        if (second is not null)
        {
            tokens.AddRange(second);
            tokens.Add(Special(_tokenizer.SeparatorTokenId, _tokenizer.SeparatorToken));
            typeIds.AddRange(Enumerable.Repeat(1, second.Count + 1));
        }

        return new EncodedInput(tokens.ConvertAll(t => t.Id), typeIds, tokens) { UntruncatedLength = untruncated };
    }

    /// <summary>Word pieces of <paramref name="word"/> tokenized alone (tagging aligns words this way).</summary>
    public int CountPieces(string word) => Tokenize(word, TokenSegment.Text).Count;

    private List<TokenInfo> Tokenize(string text, TokenSegment segment)
    {
        IReadOnlyList<EncodedToken> encoded = _tokenizer.EncodeToTokens(text, out _, considerPreTokenization: true, considerNormalization: true);
        var tokens = new List<TokenInfo>(encoded.Count);
        foreach (EncodedToken token in encoded)
        {
            tokens.Add(new TokenInfo(token.Id, token.Value, segment, token.Offset));
        }

        return tokens;
    }

    private static TokenInfo Special(int id, string value) => new(id, value, TokenSegment.Special, default);

    private static void Truncate(List<TokenInfo> tokens, int budget)
    {
        if (tokens.Count > budget)
        {
            tokens.RemoveRange(budget, tokens.Count - budget);
        }
    }

    /// <summary>Drops pieces from the end of the longer sequence (the second one on ties) until both fit, as BERT does.</summary>
    internal static void TruncateLongestFirst<T>(List<T> first, List<T> second, int budget)
    {
        while (first.Count + second.Count > budget)
        {
            List<T> longer = first.Count > second.Count ? first : second;
            longer.RemoveAt(longer.Count - 1);
        }
    }
}
