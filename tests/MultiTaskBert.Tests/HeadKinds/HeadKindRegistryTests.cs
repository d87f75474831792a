using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Tests.HeadKinds;

public sealed class HeadKindRegistryTests
{
    [Fact]
    public void Kinds_are_found_by_their_manifest_name_only()
    {
        Assert.Equal(["classification", "regression", "tagging", "embedding", "examples"], HeadKindRegistry.Kinds.Select(k => k.Name));
        Assert.Same(ClassificationKind.Instance, HeadKindRegistry.Find("classification"));
        Assert.Same(RegressionKind.Instance, HeadKindRegistry.Find("regression"));
        Assert.Same(TaggingKind.Instance, HeadKindRegistry.Find("tagging"));
        Assert.Null(HeadKindRegistry.Find("Classification"));
        Assert.Null(HeadKindRegistry.Find(null));
    }

    [Fact]
    public void An_unknown_kind_names_the_field_and_lists_the_kinds()
    {
        var error = Assert.Throws<BundleValidationException>(() => HeadKindRegistry.Require("multilabel", "tasks[4].output.kind"));

        Assert.Equal(("manifest.json", "tasks[4].output.kind"), (error.File, error.Field));
        Assert.Contains("unknown kind 'multilabel' (expected classification | regression | tagging | embedding | examples)", error.Message);
    }

    [Fact]
    public void Every_kind_has_a_result_record_in_the_union_and_an_examples_task_answers_as_a_classification()
    {
        Type[] results = [.. HeadKindRegistry.Kinds.Select(k => k.ResultType)];

        Assert.Equal([typeof(ClassificationResult), typeof(RegressionResult), typeof(TaggingResult), typeof(EmbeddingResult), typeof(ClassificationResult)], results);
        Assert.All(results, t => Assert.True(t.IsSubclassOf(typeof(TaskResult)) && t.IsSealed));
    }

    [Theory]
    [InlineData("classification", "output.labels", 2, false)]
    [InlineData("regression", "output.kind", 2, false)]
    [InlineData("tagging", "output.tags", 3, true)]
    [InlineData("embedding", "output.dimensions", 2, false)]
    [InlineData("examples", "output.centroids.file", 2, false)]
    public void What_the_head_graph_must_output(string name, string widthField, int rank, bool needsWords)
    {
        HeadKind kind = HeadKindRegistry.Find(name)!;

        Assert.Equal((widthField, rank, needsWords), (kind.WidthField, kind.OutputRank, kind.NeedsWordAlignment));
    }
}
