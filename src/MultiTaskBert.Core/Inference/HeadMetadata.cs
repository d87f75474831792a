using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Where a head belongs, as the toolkit records it in the graph's metadata_props: the trunk layer it
/// was trained on, its input kind and the fingerprint of the pretrained (frozen trunk) weights. A
/// head served on other hidden states answers wrongly without any error, so a manifest entry or an
/// upload that disagrees with its file is refused. Heads without these keys (older bundles) load.
/// </summary>
internal static class HeadMetadata
{
    public const string BranchLayerKey = "mtbert.branchLayer";
    public const string InputKey = "mtbert.input";
    public const string FingerprintKey = "mtbert.pretrainedFingerprint";

    public static void Verify(InferenceSession session, TaskDefinition task, TrunkManifest trunk)
    {
        Dictionary<string, string> metadata = session.ModelMetadata.CustomMetadataMap;
        string file = task.Head.RelativePath;
        string at = task.ManifestField;
        string input = task.Input == TaskInputKind.Pair ? "pair" : "single";
        Check(metadata, BranchLayerKey, task.BranchLayer.ToString(System.Globalization.CultureInfo.InvariantCulture), file, $"{at}.branchLayer",
            "the head was trained on the hidden states of another trunk layer");
        Check(metadata, InputKey, input, file, $"{at}.input", "the head was trained on another input kind");
        if (metadata.TryGetValue(FingerprintKey, out string? fingerprint)
            && !string.Equals(fingerprint, trunk.Pretrained.Fingerprint, StringComparison.OrdinalIgnoreCase))
        {
            throw new BundleValidationException(file, $"{at}.pretrainedFingerprint",
                $"head file metadata {FingerprintKey} is {fingerprint}, the trunk's trunk.pretrained.fingerprint is {trunk.Pretrained.Fingerprint}: the head was trained on other pretrained weights than the trunk ({trunk.Pretrained.Name})");
        }
    }

    private static void Check(Dictionary<string, string> metadata, string key, string expected, string file, string field, string why)
    {
        if (metadata.TryGetValue(key, out string? value) && !string.Equals(value, expected, StringComparison.Ordinal))
        {
            throw new BundleValidationException(file, field, $"head file metadata {key} is '{value}', the manifest entry says '{expected}': {why}");
        }
    }
}
