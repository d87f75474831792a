using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Faults;

namespace MultiTaskBert.Tests.Support;

/// <summary>
/// The hostile heads of issue #25 (<c>tests/fixtures/hostile/make_hostile_heads.py</c>): each file,
/// the fixture task whose manifest entry it fits, and the entry for it as a new task.
/// </summary>
public static class HostileHeads
{
    /// <summary>Which fixture task's entry each hostile head fits (kind, input, width).</summary>
    public static string TemplateOf(string head) => head switch
    {
        "nan-regression.onnx" => "stsb",
        "nan-tagging.onnx" => "snips_slots",
        _ => "sst2",
    };

    public static string PathOf(string head) => ServiceCluster.RepositoryFile("tests/fixtures/hostile/" + head);

    /// <summary>The template's entry renamed to <paramref name="task"/>, reading <paramref name="file"/> with hidden states only (no SHA-256: computed on upload).</summary>
    public static JsonObject Entry(BundleCopy bundle, string head, string task, string? file = null)
    {
        string template = TemplateOf(head);
        var entry = (JsonObject)bundle.ReadManifest()["tasks"]!.AsArray().First(t => (string?)t!["name"] == template)!.DeepClone();
        OutOfDomainEntries.Strip(entry);
        entry["name"] = task;
        entry["branchLayer"] = 1;
        entry["head"]!["inputs"]!["attentionMask"] = null;
        entry["head"]!.AsObject().Remove("sha256");
        if (file is not null)
        {
            entry["head"]!["file"] = file;
        }

        return entry;
    }

    /// <summary>Copies the hostile head into the bundle and adds task <paramref name="task"/> for it to the manifest.</summary>
    public static void AddTo(BundleCopy bundle, string head, string task)
    {
        string file = "heads/" + head;
        File.Copy(PathOf(head), bundle.PathOf(file), overwrite: true);
        JsonObject entry = Entry(bundle, head, task, file);
        entry["head"]!["sha256"] = bundle.Sha256Of(file);
        bundle.EditManifest(m => m["tasks"]!.AsArray().Add(entry));
    }

    /// <summary>
    /// Serving parts with the bundle in service without its warm-up (which refuses most hostile
    /// heads): what a head that passes admission but misbehaves later does to the run.
    /// </summary>
    public static async Task<ServingParts> ServeWithoutWarmUpAsync(OnnxSessionFactory sessions, BundleCopy bundle, HeadGuardOptions? guards = null)
    {
        var serving = new ServingParts(sessions, guards: guards);
        ModelBundle loaded = await BundleLoader.LoadAsync(bundle.Directory);
        serving.Snapshots.Replace(expected: null, BundleSnapshot.Create(loaded, sessions));
        return serving;
    }

    public static OnnxSessionFactory Sessions() =>
        new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
}
