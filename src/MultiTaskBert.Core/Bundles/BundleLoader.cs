using System.Text.Json;
using System.Text.RegularExpressions;

using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Core.Bundles;

/// <summary>
/// Reads a bundle folder and checks everything that can be checked without ONNX Runtime:
/// manifest shape and rules, file presence, containment and SHA-256, head/trunk fit.
/// Every failure is a <see cref="BundleValidationException"/> naming the file and the field.
/// </summary>
public static partial class BundleLoader
{
    public const string ManifestFileName = "manifest.json";
    public const int SupportedFormatVersion = 1;

    public static async Task<ModelBundle> LoadAsync(string bundleDirectory, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bundleDirectory);
        string directory = Path.GetFullPath(bundleDirectory);
        if (!Directory.Exists(directory))
        {
            throw new BundleValidationException(directory, "Model:BundlePath", "bundle folder not found");
        }

        BundleManifest manifest = await ReadManifestAsync(directory, cancellationToken).ConfigureAwait(false);
        return await ValidateAsync(directory, manifest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Validates a manifest given as JSON (a published version of the bundle, not manifest.json)
    /// against the files of <paramref name="bundleDirectory"/>; <paramref name="file"/> names it in errors.
    /// </summary>
    public static async Task<ModelBundle> LoadAsync(string bundleDirectory, System.Text.Json.Nodes.JsonObject manifest, string file, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(bundleDirectory);
        ArgumentNullException.ThrowIfNull(manifest);
        BundleManifest parsed;
        try
        {
            parsed = manifest.Deserialize(BundleManifestJsonContext.Default.BundleManifest)
                     ?? throw new BundleValidationException(file, "(root)", "the manifest is JSON null");
        }
        catch (JsonException ex)
        {
            throw new BundleValidationException(file, JsonErrorField.Of(ex, "(root)"), $"invalid manifest JSON: {ex.Message}", ex);
        }

        return await ValidateAsync(Path.GetFullPath(bundleDirectory), parsed, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<BundleManifest> ReadManifestAsync(string directory, CancellationToken cancellationToken)
    {
        string path = Path.Combine(directory, ManifestFileName);
        if (!File.Exists(path))
        {
            throw new BundleValidationException(ManifestFileName, "(file)", "file not found in the bundle folder");
        }

        try
        {
            await using FileStream stream = File.OpenRead(path);
            return await JsonSerializer.DeserializeAsync(stream, BundleManifestJsonContext.Default.BundleManifest, cancellationToken)
                       .ConfigureAwait(false)
                   ?? throw new BundleValidationException(ManifestFileName, "(root)", "the manifest is JSON null");
        }
        catch (JsonException ex)
        {
            throw new BundleValidationException(ManifestFileName, JsonErrorField.Of(ex, "(root)"), $"invalid manifest JSON: {ex.Message}", ex);
        }
    }

    private static async Task<ModelBundle> ValidateAsync(string directory, BundleManifest manifest, CancellationToken cancellationToken)
    {
        if (manifest.FormatVersion != SupportedFormatVersion)
        {
            Fail("formatVersion", $"unsupported format version {manifest.FormatVersion} (this service reads {SupportedFormatVersion})");
        }

        RequireNonEmpty(manifest.Name, "name");
        RequireNonEmpty(manifest.Version, "version");

        TokenizerManifest tokenizer = manifest.Tokenizer;
        string vocabPath = BundleFiles.ResolveExistingFile(directory, tokenizer.VocabFile, "tokenizer.vocabFile");
        if (tokenizer.MaxSequenceLength < 3)
        {
            Fail("tokenizer.maxSequenceLength", $"must be at least 3 ([CLS], [SEP], [SEP]), not {tokenizer.MaxSequenceLength}");
        }

        TrunkManifest trunk = manifest.Trunk;
        (string trunkPath, string? float16TrunkPath, Dictionary<int, string> outputsByLayer) = await ValidateTrunkAsync(directory, trunk, cancellationToken).ConfigureAwait(false);
        var tasks = new List<TaskDefinition>(manifest.Tasks.Count);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < manifest.Tasks.Count; i++)
        {
            TaskManifest task = manifest.Tasks[i];
            tasks.Add(await ValidateTaskAsync(directory, trunk, outputsByLayer, task, $"tasks[{i}]", names, cancellationToken).ConfigureAwait(false));
        }

        PairSource.RequireEmbeddingTasks(tasks);

        return new ModelBundle
        {
            Directory = directory,
            Manifest = manifest,
            VocabPath = vocabPath,
            TrunkPath = trunkPath,
            Float16TrunkPath = float16TrunkPath,
            TrunkOutputsByLayer = outputsByLayer,
            Tasks = tasks,
        };
    }

    /// <summary>The trunk section: its graph (and float16 graph), layers, fingerprint and the outputs by layer.</summary>
    private static async Task<(string TrunkPath, string? Float16TrunkPath, Dictionary<int, string> OutputsByLayer)> ValidateTrunkAsync(
        string directory, TrunkManifest trunk, CancellationToken cancellationToken)
    {
        string trunkPath = BundleFiles.ResolveExistingFile(directory, trunk.File, "trunk.file");
        await BundleFiles.VerifySha256Async(trunkPath, trunk.File, trunk.Sha256, "trunk.sha256", cancellationToken).ConfigureAwait(false);
        RefuseExternalData(trunkPath, trunk.File, "trunk.file");
        if (trunk.HiddenSize < 1)
        {
            Fail("trunk.hiddenSize", $"must be positive, not {trunk.HiddenSize}");
        }

        if (trunk.NumLayers < 1 || trunk.NumLayers > trunk.Pretrained.NumLayers)
        {
            Fail("trunk.numLayers", $"must be in 1..trunk.pretrained.numLayers ({trunk.Pretrained.NumLayers}), not {trunk.NumLayers}");
        }

        string? float16TrunkPath = trunk.Float16 is { } float16
            ? await ResolveGraphAsync(directory, float16, "trunk.float16", cancellationToken).ConfigureAwait(false)
            : null;
        RequireNonEmpty(trunk.Pretrained.Fingerprint, "trunk.pretrained.fingerprint");
        var outputsByLayer = new Dictionary<int, string>();
        for (int i = 0; i < trunk.Outputs.Count; i++)
        {
            TrunkOutputManifest output = trunk.Outputs[i];
            if (output.Layer < 1 || output.Layer > trunk.NumLayers)
            {
                Fail($"trunk.outputs[{i}].layer", $"layer {output.Layer} is not in 1..trunk.numLayers ({trunk.NumLayers})");
            }

            if (!outputsByLayer.TryAdd(output.Layer, output.Name))
            {
                Fail($"trunk.outputs[{i}].layer", $"layer {output.Layer} is listed twice");
            }
        }

        return (trunkPath, float16TrunkPath, outputsByLayer);
    }

    /// <summary>
    /// Validates one task entry against an already validated bundle (same rules as start-up:
    /// name, kinds, fingerprint = the trunk's, branch layer within the trunk and exported, labels,
    /// head file inside the bundle folder and its SHA-256). <paramref name="index"/> is its position
    /// in the new manifest, used for field names.
    /// </summary>
    public static Task<TaskDefinition> ValidateTaskAsync(ModelBundle bundle, TaskManifest task, int index, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        ArgumentNullException.ThrowIfNull(task);
        var outputsByLayer = bundle.TrunkOutputsByLayer.ToDictionary(p => p.Key, p => p.Value);
        return ValidateTaskAsync(bundle.Directory, bundle.Manifest.Trunk, outputsByLayer, task, $"tasks[{index}]", takenNames: null, cancellationToken);
    }

    /// <summary>
    /// The task name rule, the one place the service defines it (checked here for every task entry,
    /// and by the registry before an uploaded head is named after the task; the toolkit's bundle
    /// writer has the same): the whole string is 1-64 of ASCII a-z, 0-9, '_', '-'. <c>\z</c>,
    /// not <c>$</c>: <c>$</c> also matches before a final newline, so "nl\n" would pass.
    /// </summary>
    public const string TaskNameRule = "[a-z0-9_-]{1,64}";

    /// <summary>The highest task version: one below int.MaxValue, so a replacement can always be newer.</summary>
    public const int MaxTaskVersion = int.MaxValue - 1;

    /// <summary>The longest task description (<c>GET /tasks</c> lists it for every task).</summary>
    public const int MaxDescriptionChars = 1000;

    /// <summary>Whether <paramref name="name"/> is a valid task name (<see cref="TaskNameRule"/>).</summary>
    public static bool IsValidTaskName(string? name) => name is not null && TaskNamePattern().IsMatch(name);

    /// <summary>Throws a validation error naming <paramref name="field"/> unless the name follows <see cref="TaskNameRule"/>.</summary>
    public static void RequireTaskName(string? name, string field)
    {
        if (!IsValidTaskName(name))
        {
            Fail(field, $"'{BundleValidationException.Printable(name ?? "")}' does not match {TaskNameRule} (ASCII only, whole string)");
        }
    }

    /// <summary>The entry's name (unique when <paramref name="takenNames"/> is given), version and description.</summary>
    private static void ValidateTaskIdentity(TaskManifest task, string at, HashSet<string>? takenNames)
    {
        RequireTaskName(task.Name, $"{at}.name");
        if (takenNames is not null && !takenNames.Add(task.Name))
        {
            Fail($"{at}.name", $"duplicate task '{task.Name}'");
        }

        if (task.Version is < 1 or > MaxTaskVersion)
        {
            Fail($"{at}.version", $"must be in 1..{MaxTaskVersion}, not {task.Version}");
        }

        if (task.Description is { Length: > MaxDescriptionChars })
        {
            Fail($"{at}.description", $"is {task.Description.Length} characters long; at most {MaxDescriptionChars}");
        }
    }

    /// <summary>Whether the head fits the trunk: trained on its weights, branching at a layer it has and exports.</summary>
    private static void ValidateBranch(TaskManifest task, TrunkManifest trunk, Dictionary<int, string> outputsByLayer, string at)
    {
        if (!string.Equals(task.PretrainedFingerprint, trunk.Pretrained.Fingerprint, StringComparison.OrdinalIgnoreCase))
        {
            Fail($"{at}.pretrainedFingerprint",
                $"head of task '{task.Name}' was trained on other pretrained weights than the trunk ({trunk.Pretrained.Name}, trunk.pretrained.fingerprint)");
        }

        if (task.BranchLayer < 1 || task.BranchLayer > trunk.NumLayers)
        {
            Fail($"{at}.branchLayer", $"layer {task.BranchLayer} is not in 1..trunk.numLayers ({trunk.NumLayers}): the head branches deeper than the trunk");
        }

        if (!outputsByLayer.ContainsKey(task.BranchLayer))
        {
            Fail($"{at}.branchLayer", $"trunk.outputs has no entry for layer {task.BranchLayer}");
        }
    }

    private static async Task<TaskDefinition> ValidateTaskAsync(
        string directory,
        TrunkManifest trunk,
        Dictionary<int, string> outputsByLayer,
        TaskManifest task,
        string at,
        HashSet<string>? takenNames,
        CancellationToken cancellationToken)
    {
        ValidateTaskIdentity(task, at, takenNames);
        TaskInputKind input = task.Input switch
        {
            "single" => TaskInputKind.Single,
            "pair" => TaskInputKind.Pair,
            _ => throw Error($"{at}.input", $"unknown input '{task.Input}' (expected single | pair)"),
        };
        HeadKind kind = HeadKindRegistry.Require(task.Output.Kind, $"{at}.output.kind");

        ValidateBranch(task, trunk, outputsByLayer, at);
        OutputSettings output = kind.ReadOutput(task.Output, input, at);
        HeadManifest head = task.Head;
        OutOfDomainGraph? outOfDomain = head.OutOfDomain is { } distance ? ReadOutOfDomain(distance, task, outputsByLayer, $"{at}.head.outOfDomain") : null;

        if (output.Fallback is { ReadsDistance: true } && head.OutOfDomain is null)
        {
            Fail($"{at}.head.outOfDomain", $"output.fallback.rule '{output.Fallback.RuleName}' reads the head's out-of-domain distance output, which head.outOfDomain must name");
        }

        string headPath = BundleFiles.ResolveExistingFile(directory, head.File, $"{at}.head.file");
        await BundleFiles.VerifySha256Async(headPath, head.File, head.Sha256, $"{at}.head.sha256", cancellationToken).ConfigureAwait(false);
        RefuseExternalData(headPath, head.File, $"{at}.head.file");
        GraphFile? floatHead = head.FloatGraph is { } variant
            ? new GraphFile(variant.File, await ResolveGraphAsync(directory, variant, $"{at}.head.float", cancellationToken).ConfigureAwait(false))
            : null;

        ExamplesModel? examples = task.Output.Centroids is { } centroids && kind == ExamplesKind.Instance
            ? await ReadCentroidsAsync(directory, centroids, output, $"{at}.output.centroids", cancellationToken).ConfigureAwait(false)
            : null;
        var definition = new TaskDefinition
        {
            Name = task.Name,
            Version = task.Version,
            Description = task.Description,
            ManifestField = at,
            Input = input,
            Kind = kind,
            BranchLayer = task.BranchLayer,
            Labels = output.Labels,
            Range = output.Range,
            Crf = output.Crf,
            Fallback = output.Fallback,
            Temperature = output.Temperature,
            ServedByDefault = task.ServedByDefault ?? true,
            Dimensions = output.Dimensions,
            Examples = examples,
            PairSource = task.Output.Source is { } source ? PairSource.Read(source, input, task.Output, at) : null,
            Head = new HeadGraph(head.File, headPath, head.Inputs.HiddenStates, head.Inputs.AttentionMask, head.Output, $"{at}.head", outOfDomain, floatHead),
            Metrics = task.Metrics,
        };
        PairSource.RequireServable(definition);
        return definition;
    }

    /// <summary>A head's out-of-domain distance: a non-empty output name, a layer the trunk outputs, and its own input unless it reads the branch layer.</summary>
    private static OutOfDomainGraph ReadOutOfDomain(OutOfDomainManifest distance, TaskManifest task, Dictionary<int, string> outputsByLayer, string field)
    {
        RequireNonEmpty(distance.Output, $"{field}.output");
        if (!outputsByLayer.ContainsKey(distance.Layer))
        {
            Fail($"{field}.layer", $"trunk.outputs has no entry for layer {distance.Layer}");
        }

        if (distance.Layer != task.BranchLayer && string.IsNullOrEmpty(distance.HiddenStates))
        {
            Fail($"{field}.hiddenStates", $"layer {distance.Layer} is not the branch layer ({task.BranchLayer}): name the graph input that takes its hidden states");
        }

        return new OutOfDomainGraph(distance.Output, distance.Layer, distance.Layer == task.BranchLayer ? null : distance.HiddenStates);
    }

    /// <summary>An examples task's centroid file: inside the bundle, SHA-256 as declared, labels × dimensions float32 values, finite.</summary>
    private static async Task<ExamplesModel> ReadCentroidsAsync(string directory, GraphFileManifest centroids, OutputSettings output, string field, CancellationToken cancellationToken)
    {
        string path = BundleFiles.ResolveExistingFile(directory, centroids.File, $"{field}.file");
        await BundleFiles.VerifySha256Async(path, centroids.File, centroids.Sha256, $"{field}.sha256", cancellationToken).ConfigureAwait(false);
        byte[] bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        int labels = output.Labels.Count;
        if (bytes.Length == 0 || bytes.Length % (sizeof(float) * labels) != 0)
        {
            throw new BundleValidationException(centroids.File, $"{field}.file", $"{bytes.Length} bytes is not {labels} (output.labels) rows of float32 values");
        }

        float[] values = new float[bytes.Length / sizeof(float)];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * sizeof(float)));
        }

        if (values.Any(v => !float.IsFinite(v)))
        {
            throw new BundleValidationException(centroids.File, $"{field}.file", "values must be finite");
        }

        return new ExamplesModel(values, labels, output.ExamplesFallback);
    }

    /// <summary>An extra graph (<c>trunk.float16</c>, <c>head.float</c>): inside the bundle, present, SHA-256 as declared.</summary>
    private static async Task<string> ResolveGraphAsync(string directory, GraphFileManifest graph, string field, CancellationToken cancellationToken)
    {
        string path = BundleFiles.ResolveExistingFile(directory, graph.File, $"{field}.file");
        await BundleFiles.VerifySha256Async(path, graph.File, graph.Sha256, $"{field}.sha256", cancellationToken).ConfigureAwait(false);
        RefuseExternalData(path, graph.File, $"{field}.file");
        return path;
    }

    /// <summary>A graph whose tensors read data from other files: the SHA-256 would not cover what runs.</summary>
    private static void RefuseExternalData(string fullPath, string relativePath, string field)
    {
        string? external;
        try
        {
            using FileStream stream = new(fullPath, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
            external = OnnxExternalData.FindFirst(stream);
        }
        catch (InvalidDataException ex)
        {
            throw new BundleValidationException(relativePath, field, $"not a valid ONNX file: {ex.Message}", ex);
        }

        if (external is not null)
        {
            throw new BundleValidationException(relativePath, field,
                $"{external}: external data is refused; every tensor must be stored inside the file (its SHA-256 covers only this file)");
        }
    }

    internal static void RequireNonEmpty(string value, string field)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            Fail(field, "must not be empty");
        }
    }

    private static BundleValidationException Error(string field, string problem) => new(ManifestFileName, field, problem);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private static void Fail(string field, string problem) => throw Error(field, problem);

    [GeneratedRegex("^" + TaskNameRule + @"\z", RegexOptions.CultureInvariant)]
    private static partial Regex TaskNamePattern();
}
