namespace MultiTaskBert.Core.Tagging;

/// <summary>A whitespace-separated word of the original text: its characters and where they are (end exclusive).</summary>
public readonly record struct TextWord(string Text, int Start, int End);

/// <summary>Splits text into words exactly as Python's <c>str.split()</c> does, keeping character offsets.</summary>
public static class WhitespaceWords
{
    public static IReadOnlyList<TextWord> Split(string text)
    {
        var words = new List<TextWord>();
        int start = -1;
        for (int i = 0; i <= text.Length; i++)
        {
            bool space = i == text.Length || IsSeparator(text[i]);
            if (space && start >= 0)
            {
                words.Add(new TextWord(text[start..i], start, i));
                start = -1;
            }
            else if (!space && start < 0)
            {
                start = i;
            }
        }

        return words;
    }

    // Python's str.split() also splits on the information separators U+001C..U+001F, which .NET
    // does not count as white space; every other separator is a BMP char that IsWhiteSpace knows.
    private static bool IsSeparator(char c) => char.IsWhiteSpace(c) || c is >= '\u001C' and <= '\u001F';
}
