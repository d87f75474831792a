using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Inference;

/// <summary>
/// Checks a loaded graph against what the manifest declares: I/O names, element types and the
/// static widths. Dynamic widths are checked again on the warm-up run (<see cref="HeadRunner"/>).
/// </summary>
internal static class GraphContract
{
    /// <summary>Checks the trunk graph <paramref name="file"/> (trunk.file or trunk.float16.file: the same contract).</summary>
    public static void VerifyTrunk(InferenceSession session, ModelBundle bundle, string file)
    {
        TrunkManifest trunk = bundle.Manifest.Trunk;
        RequireInput(session, file, "trunk.inputs.inputIds", trunk.Inputs.InputIds, TensorElementType.Int64);
        RequireInput(session, file, "trunk.inputs.attentionMask", trunk.Inputs.AttentionMask, TensorElementType.Int64);
        RequireInput(session, file, "trunk.inputs.tokenTypeIds", trunk.Inputs.TokenTypeIds, TensorElementType.Int64);
        for (int i = 0; i < trunk.Outputs.Count; i++)
        {
            NodeMetadata output = RequireOutput(session, file, $"trunk.outputs[{i}].name", trunk.Outputs[i].Name);
            RequireLastAxis(output, file, "trunk.hiddenSize", trunk.HiddenSize, $"output '{trunk.Outputs[i].Name}'");
        }
    }

    public static void VerifyHead(InferenceSession session, TaskDefinition task, TrunkManifest trunk, string file)
    {
        int hiddenSize = trunk.HiddenSize;
        HeadGraph head = task.Head;
        string at = head.ManifestField;
        NodeMetadata hidden = RequireInput(session, file, $"{at}.inputs.hiddenStates", head.HiddenStatesInput, TensorElementType.Float);
        RequireLastAxis(hidden, file, "trunk.hiddenSize", hiddenSize, $"input '{head.HiddenStatesInput}'");
        if (head.AttentionMaskInput is { } maskInput)
        {
            RequireInput(session, file, $"{at}.inputs.attentionMask", maskInput, TensorElementType.Int64);
        }

        string? distanceInput = head.OutOfDomain?.HiddenStatesInput;
        if (distanceInput is not null)
        {
            NodeMetadata states = RequireInput(session, file, $"{at}.outOfDomain.hiddenStates", distanceInput, TensorElementType.Float);
            RequireLastAxis(states, file, "trunk.hiddenSize", hiddenSize, $"input '{distanceInput}'");
        }

        // Every graph input must be fed: an undeclared one would fail at the first request.
        string? undeclared = session.InputMetadata.Keys.FirstOrDefault(k => k != head.HiddenStatesInput && k != head.AttentionMaskInput && k != distanceInput);
        if (undeclared is not null)
        {
            throw new BundleValidationException(file, $"{at}.inputs", $"graph input '{undeclared}' is not declared in the manifest");
        }

        NodeMetadata output = RequireOutput(session, file, $"{at}.output", head.Output);
        RequireLastAxis(output, file, task.OutputWidthField, task.OutputWidth, $"output '{head.Output}'");
        if (head.OutOfDomain?.Output is { } distanceName)
        {
            // One distance per row: [batch] or [batch, 1].
            NodeMetadata distance = RequireOutput(session, file, $"{at}.outOfDomain.output", distanceName);
            if (distance.Dimensions.Length is < 1 or > 2 || (distance.Dimensions.Length == 2 && distance.Dimensions[1] > 1))
            {
                throw new BundleValidationException(file, $"{at}.outOfDomain.output",
                    $"output '{distanceName}' has shape [{string.Join(", ", distance.Dimensions)}], expected [batch] or [batch, 1]");
            }
        }
        HeadMetadata.Verify(session, task, trunk);
    }

    private static NodeMetadata RequireInput(InferenceSession session, string file, string field, string name, TensorElementType type)
    {
        if (!session.InputMetadata.TryGetValue(name, out NodeMetadata? metadata))
        {
            throw new BundleValidationException(file, field,
                $"graph has no input '{name}' (inputs: {string.Join(", ", session.InputMetadata.Keys)})");
        }

        if (metadata.ElementDataType != type)
        {
            throw new BundleValidationException(file, field, $"input '{name}' is {metadata.ElementDataType}, expected {type}");
        }

        return metadata;
    }

    private static NodeMetadata RequireOutput(InferenceSession session, string file, string field, string name)
    {
        if (!session.OutputMetadata.TryGetValue(name, out NodeMetadata? metadata))
        {
            throw new BundleValidationException(file, field,
                $"graph has no output '{name}' (outputs: {string.Join(", ", session.OutputMetadata.Keys)})");
        }

        if (metadata.ElementDataType != TensorElementType.Float)
        {
            throw new BundleValidationException(file, field, $"output '{name}' is {metadata.ElementDataType}, expected Float");
        }

        return metadata;
    }

    private static void RequireLastAxis(NodeMetadata metadata, string file, string field, int expected, string what)
    {
        int[] dims = metadata.Dimensions;
        // Negative = symbolic axis: only known once the graph runs.
        if (dims.Length > 0 && dims[^1] > 0 && dims[^1] != expected)
        {
            throw new BundleValidationException(file, field, $"{what} has width {dims[^1]}, manifest says {expected}");
        }
    }
}
