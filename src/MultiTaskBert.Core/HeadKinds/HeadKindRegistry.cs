using System.Text.Json.Serialization.Metadata;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.HeadKinds;

/// <summary>The head kinds the service knows, by manifest name: the one place a kind is registered.</summary>
public static class HeadKindRegistry
{
    /// <summary>Every kind, in the order error messages list them.</summary>
    public static IReadOnlyList<HeadKind> Kinds { get; } = [ClassificationKind.Instance, RegressionKind.Instance, TaggingKind.Instance, EmbeddingKind.Instance, ExamplesKind.Instance];

    /// <summary>
    /// The members of the <see cref="TaskResult"/> union: every kind's answer record, then
    /// <see cref="TaskErrorResult"/> (a task whose head failed for the input).
    /// </summary>
    public static IReadOnlyList<Type> ResultTypes { get; } = [.. Kinds.Select(k => k.ResultType).Distinct(), typeof(TaskErrorResult)];

    /// <summary>The kind named <paramref name="name"/> (manifest <c>output.kind</c>), or null.</summary>
    public static HeadKind? Find(string? name) => Kinds.FirstOrDefault(k => string.Equals(k.Name, name, StringComparison.Ordinal));

    /// <summary>The kind named <paramref name="name"/>; else a manifest error at <paramref name="field"/> listing the kinds.</summary>
    public static HeadKind Require(string? name, string field) =>
        Find(name) ?? throw new BundleValidationException(BundleLoader.ManifestFileName, field,
            $"unknown kind '{name}' (expected {string.Join(" | ", Kinds.Select(k => k.Name))})");

    /// <summary>
    /// A System.Text.Json contract modifier: makes <see cref="TaskResult"/> polymorphic over every
    /// kind's result type (and the error record), with no discriminator, so an answer serializes as its own record.
    /// Without it a <see cref="TaskResult"/> would serialize as its (empty) declared type.
    /// </summary>
    public static void DescribeResultUnion(JsonTypeInfo typeInfo)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        if (typeInfo.Type != typeof(TaskResult))
        {
            return;
        }

        typeInfo.PolymorphismOptions = new JsonPolymorphismOptions();
        foreach (Type member in ResultTypes)
        {
            typeInfo.PolymorphismOptions.DerivedTypes.Add(new JsonDerivedType(member));
        }
    }
}
