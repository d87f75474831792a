using System.Globalization;
using System.Text;
using Microsoft.ML.Tokenizers;

namespace MultiTaskBert.Core.Tokenization;

/// <summary>
/// BERT's "basic tokenizer" text handling, step for step as the original BERT / Hugging Face
/// <c>BasicTokenizer</c> (and the toolkit's reference tokenizer) do it: drop NUL, U+FFFD and
/// other-category (C*) characters except tab/CR/LF; map whitespace to a space; isolate CJK
/// ideographs; lower-case (Python's full mapping); NFD and drop non-spacing marks; isolate
/// punctuation. The output is space-separated words that only need splitting on whitespace.
/// </summary>
/// <remarks>
/// Replaces Microsoft.ML.Tokenizers' built-in BertNormalizer + punctuation pre-tokenizer, which
/// deviate from the reference: tab/CR/LF are deleted instead of separating words, format
/// characters (U+200B, U+00AD) are kept, the result is re-composed to NFC (changes decomposed
/// Hangul), symbols such as <c>$ + &lt; = &gt; ^ ` | ~</c> are dropped instead of becoming tokens,
/// and .NET's invariant lower-casing leaves U+0130 and final sigma different from Python's.
/// Token offsets therefore refer to the normalized text.
/// </remarks>
internal sealed class BertUncasedNormalizer(bool lowercase, bool stripAccents) : Normalizer
{
    private const int CapitalSigma = 0x03A3;

    public override string Normalize(string original) => Normalize(original.AsSpan());

    public override string Normalize(ReadOnlySpan<char> original)
    {
        string text = Clean(original);
        if (lowercase)
        {
            text = ToLowerLikePython(text);
        }

        if (stripAccents)
        {
            text = StripAccents(text);
        }

        // Last, as the reference splits punctuation after lower-casing and accent stripping
        // (decomposition can reveal punctuation: U+037E GREEK QUESTION MARK -> ';').
        return IsolatePunctuation(text);
    }

    private static string Clean(ReadOnlySpan<char> original)
    {
        var cleaned = new StringBuilder(original.Length + 8);
        foreach (Rune rune in original.EnumerateRunes())
        {
            int cp = rune.Value;
            if (cp == 0 || cp == 0xFFFD || IsControl(rune))
            {
                continue;
            }

            if (IsWhitespace(rune))
            {
                cleaned.Append(' ');
            }
            else if (IsCjk(cp))
            {
                cleaned.Append(' ').Append(rune.ToString()).Append(' ');
            }
            else
            {
                cleaned.Append(rune.ToString());
            }
        }

        return cleaned.ToString();
    }

    /// <summary>
    /// Python's <c>str.lower()</c>: the simple mappings .NET has, plus the two that differ — the
    /// full mapping of U+0130 (İ → i + U+0307) and the final-sigma rule for U+03A3.
    /// </summary>
    private static string ToLowerLikePython(string text)
    {
        var lowered = new StringBuilder(text.Length);
        for (int i = 0; i < text.Length;)
        {
            Rune rune = Rune.GetRuneAt(text, i);
            if (rune.Value == 0x0130)
            {
                lowered.Append("i\u0307");
            }
            else if (rune.Value == CapitalSigma)
            {
                lowered.Append(IsFinalSigma(text, i) ? '\u03C2' : '\u03C3');
            }
            else
            {
                lowered.Append(Rune.ToLowerInvariant(rune).ToString());
            }

            i += rune.Utf16SequenceLength;
        }

        return lowered.ToString();
    }

    /// <summary>Unicode Final_Sigma: a cased letter before (skipping case-ignorables) and none after.</summary>
    private static bool IsFinalSigma(string text, int index)
    {
        int before = index;
        Rune previous = default;
        bool found = false;
        while (before > 0)
        {
            Rune.DecodeLastFromUtf16(text.AsSpan(0, before), out previous, out int length);
            before -= length;
            if (!IsCaseIgnorable(previous))
            {
                found = true;
                break;
            }
        }

        if (!found || !IsCased(previous))
        {
            return false;
        }

        for (int after = index + 1; after < text.Length;)
        {
            Rune next = Rune.GetRuneAt(text, after);
            if (!IsCaseIgnorable(next))
            {
                return !IsCased(next);
            }

            after += next.Utf16SequenceLength;
        }

        return true;
    }

    private static bool IsCased(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter;

    private static bool IsCaseIgnorable(Rune rune) =>
        rune.Value is '\'' or '.' or ':' or '^' or '`' or 0x00B7 or 0x2018 or 0x2019 or 0x2024 or 0x2027 or 0xFE13 or 0xFE52 or 0xFE55 or 0xFF07 or 0xFF0E or 0xFF1A
        || Rune.GetUnicodeCategory(rune) is UnicodeCategory.NonSpacingMark or UnicodeCategory.EnclosingMark or UnicodeCategory.Format
            or UnicodeCategory.ModifierLetter or UnicodeCategory.ModifierSymbol;

    private static string StripAccents(string text)
    {
        string decomposed = text.Normalize(NormalizationForm.FormD);
        var result = new StringBuilder(decomposed.Length);
        foreach (Rune rune in decomposed.EnumerateRunes())
        {
            if (Rune.GetUnicodeCategory(rune) != UnicodeCategory.NonSpacingMark)
            {
                result.Append(rune.ToString());
            }
        }

        return result.ToString();
    }

    private static string IsolatePunctuation(string text)
    {
        var result = new StringBuilder(text.Length + 16);
        foreach (Rune rune in text.EnumerateRunes())
        {
            if (IsPunctuation(rune))
            {
                result.Append(' ').Append(rune.ToString()).Append(' ');
            }
            else
            {
                result.Append(rune.ToString());
            }
        }

        return result.ToString();
    }

    private static bool IsWhitespace(Rune rune) =>
        rune.Value is ' ' or '\t' or '\n' or '\r' || Rune.GetUnicodeCategory(rune) == UnicodeCategory.SpaceSeparator;

    private static bool IsControl(Rune rune)
    {
        if (rune.Value is '\t' or '\n' or '\r')
        {
            return false;
        }

        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    /// <summary>BERT treats all non-letter/number ASCII as punctuation, plus Unicode P* categories.</summary>
    private static bool IsPunctuation(Rune rune)
    {
        int cp = rune.Value;
        if (cp is (>= 33 and <= 47) or (>= 58 and <= 64) or (>= 91 and <= 96) or (>= 123 and <= 126))
        {
            return true;
        }

        return Rune.GetUnicodeCategory(rune) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
            or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation;
    }

    private static bool IsCjk(int cp) =>
        cp is (>= 0x4E00 and <= 0x9FFF) or (>= 0x3400 and <= 0x4DBF) or (>= 0x20000 and <= 0x2A6DF) or (>= 0x2A700 and <= 0x2B73F)
            or (>= 0x2B740 and <= 0x2B81F) or (>= 0x2B820 and <= 0x2CEAF) or (>= 0xF900 and <= 0xFAFF) or (>= 0x2F800 and <= 0x2FA1F);
}
