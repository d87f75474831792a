using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Tests.HeadKinds;

/// <summary>Tasks of one kind built the way the loader builds them: the kind reads the output section.</summary>
internal static class KindTasks
{
    public const string At = "tasks[2]";

    public static TaskDefinition Define(HeadKind kind, TaskOutputManifest output, TaskInputKind input = TaskInputKind.Single)
    {
        OutputSettings settings = kind.ReadOutput(output, input, At);
        return new TaskDefinition
        {
            Name = "t",
            Version = 1,
            Description = "",
            ManifestField = At,
            Input = input,
            Kind = kind,
            BranchLayer = 1,
            Labels = settings.Labels,
            Range = settings.Range,
            Crf = settings.Crf,
            Fallback = settings.Fallback,
            Temperature = settings.Temperature,
            Head = new HeadGraph("heads/t.onnx", "/bundle/heads/t.onnx", "hidden_states", null, "logits", $"{At}.head", null),
        };
    }

    /// <summary>The validation error of reading <paramref name="output"/>: file and field it names, and its message.</summary>
    public static BundleValidationException Refused(HeadKind kind, TaskOutputManifest output, TaskInputKind input = TaskInputKind.Single) =>
        Assert.Throws<BundleValidationException>(() => kind.ReadOutput(output, input, At));
}
