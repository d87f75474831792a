using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Inference;

/// <summary>Which of a bundle's graphs serve: <c>Inference:Precision</c> against the device and the graphs the bundle has.</summary>
public static class GraphSelection
{
    /// <summary>
    /// Whether <paramref name="bundle"/> serves its float16 graphs (Auto: on CUDA when the bundle has
    /// them). Float16 asked for and absent stops the load naming the field.
    /// </summary>
    public static bool ServesFloat16(ModelBundle bundle, GraphPrecision precision, ExecutionTarget target)
    {
        ArgumentNullException.ThrowIfNull(bundle);
        return precision switch
        {
            GraphPrecision.Default => false,
            GraphPrecision.Float16 => bundle.Float16TrunkPath is not null
                ? true
                : throw new BundleValidationException(BundleLoader.ManifestFileName, "trunk.float16",
                    "Inference:Precision is Float16 but the bundle has no float16 trunk (add one with `mtbert bundle add-cuda-trunk`)"),
            _ => target == ExecutionTarget.Cuda && bundle.Float16TrunkPath is not null,
        };
    }
}
