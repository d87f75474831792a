using System.Collections.Frozen;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// An immutable, servable snapshot of a bundle: tokenizer, trunk session and one session per
/// head. The engine swaps whole snapshots, so adding, replacing or removing tasks at runtime
/// becomes "build a new snapshot, swap the reference".
/// </summary>
public sealed class LoadedBundle : IDisposable
{
    private LoadedBundle(ModelBundle bundle, BertInputEncoder encoder, TrunkRunner trunk, FrozenDictionary<string, HeadRunner> heads)
    {
        Bundle = bundle;
        Encoder = encoder;
        Trunk = trunk;
        Heads = heads;
    }

    public ModelBundle Bundle { get; }
    public string ModelId => Bundle.ModelId;
    public IReadOnlyList<TaskDefinition> Tasks => Bundle.Tasks;
    internal BertInputEncoder Encoder { get; }
    internal TrunkRunner Trunk { get; }
    internal FrozenDictionary<string, HeadRunner> Heads { get; }

    /// <summary>Creates every session once and checks each graph against the manifest.</summary>
    public static LoadedBundle Create(ModelBundle bundle, OnnxSessionFactory sessions)
    {
        var created = new List<IDisposable>();
        try
        {
            BertInputEncoder encoder = BertInputEncoder.Create(bundle.VocabPath, bundle.Manifest.Tokenizer);
            InferenceSession trunkSession = CreateSession(sessions, bundle.TrunkPath, bundle.Manifest.Trunk.File, "trunk.file", created);
            GraphContract.VerifyTrunk(trunkSession, bundle);
            var trunk = new TrunkRunner(trunkSession, bundle.Manifest.Trunk.Inputs, bundle.TrunkOutputsByLayer, sessions.HiddenStateMemory);

            var heads = new Dictionary<string, HeadRunner>(bundle.Tasks.Count, StringComparer.Ordinal);
            foreach (TaskDefinition task in bundle.Tasks)
            {
                InferenceSession headSession = CreateSession(sessions, task.Head.FullPath, task.Head.RelativePath, $"{task.Head.ManifestField}.file", created);
                GraphContract.VerifyHead(headSession, task, bundle.Manifest.Trunk.HiddenSize);
                heads.Add(task.Name, new HeadRunner(headSession, task));
            }

            return new LoadedBundle(bundle, encoder, trunk, heads.ToFrozenDictionary(StringComparer.Ordinal));
        }
        catch
        {
            created.ForEach(d => d.Dispose());
            throw;
        }
    }

    private static InferenceSession CreateSession(OnnxSessionFactory sessions, string path, string file, string field, List<IDisposable> created)
    {
        try
        {
            InferenceSession session = sessions.CreateSession(path);
            created.Add(session);
            return session;
        }
        catch (OnnxRuntimeException ex)
        {
            throw new BundleValidationException(file, field, $"ONNX Runtime cannot load the graph: {ex.Message}", ex);
        }
    }

    public void Dispose()
    {
        Trunk.Dispose();
        foreach (HeadRunner head in Heads.Values)
        {
            head.Dispose();
        }
    }
}
