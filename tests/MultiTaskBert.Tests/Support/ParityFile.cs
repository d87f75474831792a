using System.Text.Json;

namespace MultiTaskBert.Tests.Support;

/// <summary>parity.json of the fixture: token ids and PyTorch outputs the C# side must reproduce.</summary>
public sealed record ParityFile(double Tolerance, IReadOnlyList<ParityCase> Cases)
{
    private static readonly JsonSerializerOptions JsonOptions = new(JsonSerializerDefaults.Web);

    private static readonly Lazy<ParityFile> LazyFixture = new(() => JsonSerializer.Deserialize<ParityFile>(
        File.ReadAllText(Path.Combine(TestBundle.Directory, "parity.json")), JsonOptions)!);

    public static ParityFile Fixture => LazyFixture.Value;

    /// <summary>Case indexes for xunit theories (so a failure names the case).</summary>
    public static TheoryData<int> CaseIndexes
    {
        get
        {
            var data = new TheoryData<int>();
            for (int i = 0; i < Fixture.Cases.Count; i++)
            {
                data.Add(i);
            }

            return data;
        }
    }
}

public sealed record ParityCase(
    string Text,
    string? TextPair,
    IReadOnlyList<int> InputIds,
    IReadOnlyList<int> TokenTypeIds,
    IReadOnlyDictionary<string, float[]> Outputs,
    IReadOnlyDictionary<string, string[]>? Tags = null,
    IReadOnlyDictionary<string, double>? Distances = null);
