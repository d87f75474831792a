using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// Turns an admin entry with <c>output.kind: "examples"</c> and <c>output.examples</c> (label →
/// utterances) into a servable manifest entry: embeds the examples with the bundle's embedding task,
/// writes the per-label centroids to <c>examples/&lt;sha256&gt;.f32</c> (content-addressed, so a
/// restart serves the same), sets the fallback threshold by leave-one-out on the examples, and points
/// <c>head</c> at the embedding task's head (the engine runs it once for both). The toolkit's
/// <c>mtbert bundle add-examples</c> writes the same entry.
/// </summary>
public static class ExamplesTaskBuilder
{
    public const int MaxLabels = 512;
    public const int MaxExamplesPerLabel = 256;
    public const int MaxExamples = 10_000;
    public const int MaxExampleChars = 2000;
    public const string DefaultFallbackLabel = "out_of_scope";

    /// <summary>The share of examples whose leave-one-out cosine may fall below the threshold.</summary>
    public const double LeaveOneOutQuantile = 0.05;

    private const int EmbedChunk = 64;

    /// <summary>Whether <paramref name="entry"/> asks for a task to be built from its examples.</summary>
    public static bool Wants(JsonObject entry) =>
        entry["output"] is JsonObject output && output["kind"] is JsonValue kind && kind.TryGetValue(out string? k) && k == ExamplesKind.Instance.Name
        && output["examples"] is not null;

    /// <summary>Completes <paramref name="entry"/> in place (validation errors name fields under <paramref name="at"/>).</summary>
    public static async Task BuildAsync(JsonObject entry, string at, BundleSnapshot bundle, MultiTaskEngine engine, CancellationToken cancellationToken)
    {
        JsonObject output = (JsonObject)entry["output"]!;
        (List<string> labels, List<List<string>> examples) = ReadExamples(output["examples"], $"{at}.output.examples");
        TaskDefinition embedding = FindEmbedding(bundle, output["embedding"], $"{at}.output.embedding");
        List<string> texts = [.. examples.SelectMany(e => e)];
        float[][] vectors = await EmbedAsync(engine, embedding.Name, texts, cancellationToken).ConfigureAwait(false);
        int[] owners = [.. examples.SelectMany((e, label) => e.Select(_ => label))];
        float[] centroids = Centroids(vectors, owners, labels.Count);
        (string file, string sha256) = await WriteCentroidsAsync(bundle.Bundle.Directory, centroids, cancellationToken).ConfigureAwait(false);

        TaskManifest source = bundle.Bundle.Manifest.Tasks.First(t => t.Name == embedding.Name);
        output.Remove("examples");
        output["labels"] = new JsonArray([.. labels.Select(l => JsonValue.Create(l))]);
        output["embedding"] = embedding.Name;
        output["centroids"] = new JsonObject { ["file"] = file, ["sha256"] = sha256 };
        output["exampleCounts"] = new JsonObject(labels.Select((l, i) => KeyValuePair.Create(l, (JsonNode?)examples[i].Count)));
        output["fallback"] = Fallback(output["fallback"], vectors, owners, labels.Count);
        entry["input"] = "single";
        entry["branchLayer"] = embedding.BranchLayer;
        entry["pretrainedFingerprint"] = source.PretrainedFingerprint;
        JsonObject head = JsonSerializer.SerializeToNode(source.Head, BundleManifestJsonContext.Default.HeadManifest)!.AsObject();
        if (head["float"] is null)
        {
            head.Remove("float"); // absent, as the toolkit writes it, not null
        }

        entry["head"] = head;
        // Absent: the next version of the task (1 for a new one), so that re-posting examples replaces it.
        entry["version"] ??= (bundle.Tasks.FirstOrDefault(t => t.Name == (string?)entry["name"])?.Version ?? 0) + 1;
        entry["description"] ??= $"Nearest centroid of {texts.Count} example utterances, embedded by task {embedding.Name}.";
    }

    private static (List<string> Labels, List<List<string>> Examples) ReadExamples(JsonNode? node, string field)
    {
        if (node is not JsonObject map || map.Count < 2)
        {
            throw Invalid(field, "must be an object mapping at least 2 labels to their example utterances");
        }

        if (map.Count > MaxLabels)
        {
            throw Invalid(field, $"at most {MaxLabels} labels, got {map.Count}");
        }

        List<string> labels = [];
        List<List<string>> examples = [];
        foreach ((string label, JsonNode? value) in map)
        {
            string at = $"{field}.{label}";
            if (string.IsNullOrWhiteSpace(label) || label.Length > 200)
            {
                throw Invalid(at, "a label must be 1-200 characters, not blank");
            }

            if (value is not JsonArray array || array.Count == 0)
            {
                throw Invalid(at, "needs at least 1 example utterance (an array of strings)");
            }

            if (array.Count > MaxExamplesPerLabel)
            {
                throw Invalid(at, $"at most {MaxExamplesPerLabel} examples per label, got {array.Count}");
            }

            List<string> texts = [];
            for (int i = 0; i < array.Count; i++)
            {
                if (array[i] is not JsonValue v || !v.TryGetValue(out string? text) || string.IsNullOrWhiteSpace(text) || text.Length > MaxExampleChars)
                {
                    throw Invalid($"{at}[{i}]", $"must be a non-empty string of at most {MaxExampleChars} characters");
                }

                texts.Add(text);
            }

            labels.Add(label);
            examples.Add(texts);
        }

        int total = examples.Sum(e => e.Count);
        return total <= MaxExamples ? (labels, examples) : throw Invalid(field, $"at most {MaxExamples} examples in all, got {total}");
    }

    private static TaskDefinition FindEmbedding(BundleSnapshot bundle, JsonNode? named, string field)
    {
        string? name = named is JsonValue v && v.TryGetValue(out string? s) ? s : null;
        TaskDefinition[] embeddings = [.. bundle.Tasks.Where(t => t.Kind == EmbeddingKind.Instance)];
        return embeddings.FirstOrDefault(t => name is null || t.Name == name)
               ?? throw Invalid(field, name is null
                   ? "the bundle has no embedding task to embed the examples with (mtbert bundle add-embedding)"
                   : $"no embedding task '{name}' (embedding tasks: {string.Join(", ", embeddings.Select(t => t.Name))})");
    }

    private static async Task<float[][]> EmbedAsync(MultiTaskEngine engine, string task, List<string> texts, CancellationToken cancellationToken)
    {
        var vectors = new List<float[]>(texts.Count);
        foreach (string[] chunk in texts.Chunk(EmbedChunk))
        {
            RequestPredictions result = await engine.ClassifyAsync([.. chunk.Select(t => new ClassifyInput(t))], [task], cancellationToken).ConfigureAwait(false);
            vectors.AddRange(result.Results.Select(r => ((EmbeddingPrediction)r[task]).Vector));
        }

        return [.. vectors];
    }

    /// <summary>Per-label mean of the unit vectors, L2-normalised: [labels × dimensions], row-major.</summary>
    internal static float[] Centroids(float[][] vectors, int[] owners, int labels)
    {
        double[][] sums = Sums(vectors, owners, labels);
        int dimensions = vectors[0].Length;
        var centroids = new float[labels * dimensions];
        for (int label = 0; label < labels; label++)
        {
            double norm = Math.Max(Math.Sqrt(sums[label].Sum(x => x * x)), 1e-12);
            for (int d = 0; d < dimensions; d++)
            {
                centroids[(label * dimensions) + d] = (float)(sums[label][d] / norm);
            }
        }

        return centroids;
    }

    /// <summary>
    /// Each example's cosine to its label's centroid made without it (labels with one example have
    /// none); the <see cref="LeaveOneOutQuantile"/> quantile of these: about 95% of utterances like the
    /// examples stay above it. 0 when no label has two examples.
    /// </summary>
    internal static double LeaveOneOutThreshold(float[][] vectors, int[] owners, int labels)
    {
        double[][] sums = Sums(vectors, owners, labels);
        int[] sizes = new int[labels];
        foreach (int owner in owners)
        {
            sizes[owner]++;
        }

        var cosines = new List<double>();
        for (int i = 0; i < vectors.Length; i++)
        {
            if (sizes[owners[i]] < 2)
            {
                continue;
            }

            double dot = 0, norm = 0;
            for (int d = 0; d < vectors[i].Length; d++)
            {
                double rest = sums[owners[i]][d] - vectors[i][d];
                dot += rest * vectors[i][d];
                norm += rest * rest;
            }

            cosines.Add(dot / Math.Max(Math.Sqrt(norm), 1e-12));
        }

        return cosines.Count == 0 ? 0 : Quantile([.. cosines.Order()], LeaveOneOutQuantile);
    }

    /// <summary>Linear interpolation between order statistics (numpy's default).</summary>
    private static double Quantile(double[] sorted, double q)
    {
        double position = q * (sorted.Length - 1);
        int low = (int)Math.Floor(position);
        int high = Math.Min(low + 1, sorted.Length - 1);
        return sorted[low] + ((position - low) * (sorted[high] - sorted[low]));
    }

    private static double[][] Sums(float[][] vectors, int[] owners, int labels)
    {
        double[][] sums = [.. Enumerable.Range(0, labels).Select(_ => new double[vectors[0].Length])];
        for (int i = 0; i < vectors.Length; i++)
        {
            for (int d = 0; d < vectors[i].Length; d++)
            {
                sums[owners[i]][d] += vectors[i][d];
            }
        }

        return sums;
    }

    /// <summary>The entry's fallback label (default <see cref="DefaultFallbackLabel"/>) and threshold (default: leave-one-out).</summary>
    private static JsonObject Fallback(JsonNode? given, float[][] vectors, int[] owners, int labels)
    {
        JsonObject fallback = given as JsonObject is { } g ? (JsonObject)g.DeepClone() : [];
        fallback["label"] ??= DefaultFallbackLabel;
        fallback["rule"] ??= ExamplesKind.CosineRule;
        if (fallback["threshold"] is null)
        {
            fallback["threshold"] = Math.Round(LeaveOneOutThreshold(vectors, owners, labels), 6);
            fallback["selection"] = new JsonObject { ["leaveOneOutQuantile"] = LeaveOneOutQuantile };
        }

        return fallback;
    }

    /// <summary>float32 little-endian, written once under its SHA-256 (temp file, then rename).</summary>
    private static async Task<(string File, string Sha256)> WriteCentroidsAsync(string directory, float[] centroids, CancellationToken cancellationToken)
    {
        byte[] bytes = new byte[centroids.Length * sizeof(float)];
        for (int i = 0; i < centroids.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * sizeof(float)), centroids[i]);
        }

        string sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
        string relative = $"examples/{sha256}.f32";
        string path = Path.Combine(directory, "examples", $"{sha256}.f32");
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            string temp = Path.Combine(Path.GetDirectoryName(path)!, $".upload-{Guid.NewGuid():N}.tmp");
            await File.WriteAllBytesAsync(temp, bytes, cancellationToken).ConfigureAwait(false);
            File.Move(temp, path, overwrite: true);
        }

        return (relative, sha256);
    }

    private static BundleValidationException Invalid(string field, string problem) =>
        new(BundleLoader.ManifestFileName, field, problem.ToString(CultureInfo.InvariantCulture));
}
