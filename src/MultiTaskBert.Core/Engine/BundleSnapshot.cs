using System.Collections.Frozen;
using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Tokenization;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// An immutable, servable snapshot of a bundle: tokenizer, trunk session and one session per
/// head. The engine swaps whole snapshots, so adding, replacing or removing tasks at runtime is
/// "build a new snapshot, swap the reference".
/// </summary>
/// <remarks>
/// Lifetime: a snapshot starts with one lease owned by whoever created it (the engine while it is
/// in service). Every inference takes a lease (<see cref="TryAcquire"/>) and releases it when done;
/// retiring the snapshot (<see cref="Dispose"/>) drops the owner's lease. When the last lease is
/// gone the snapshot releases its references on the trunk and head sessions, which are shared with
/// newer snapshots (<see cref="SharedSession{T}"/>) and disposed only when no snapshot holds them.
/// In-flight requests therefore finish on the snapshot they started with.
/// </remarks>
public sealed class BundleSnapshot : IDisposable
{
    private readonly SharedSession<TrunkRunner> _trunk;
    private readonly FrozenDictionary<string, SharedSession<HeadRunner>> _heads;
    private int _leases = 1;
    private int _retired;

    private BundleSnapshot(ModelBundle bundle, BertInputEncoder encoder, SharedSession<TrunkRunner> trunk, FrozenDictionary<string, SharedSession<HeadRunner>> heads, bool float16)
    {
        Bundle = bundle;
        UsesFloat16Graphs = float16;
        Encoder = encoder;
        _trunk = trunk;
        _heads = heads;
        Heads = heads.ToFrozenDictionary(h => h.Key, h => h.Value.Value, StringComparer.Ordinal);
    }

    public ModelBundle Bundle { get; }

    /// <summary>Whether the float16 trunk and the heads' float graphs serve (<see cref="GraphSelection.ServesFloat16"/>).</summary>
    public bool UsesFloat16Graphs { get; }

    /// <summary>The trunk graph that serves, as the manifest names it.</summary>
    public string TrunkFile => UsesFloat16Graphs ? Bundle.Manifest.Trunk.Float16!.File : Bundle.Manifest.Trunk.File;
    public string ModelId => Bundle.ModelId;
    public IReadOnlyList<TaskDefinition> Tasks => Bundle.Tasks;
    internal BertInputEncoder Encoder { get; }
    internal TrunkRunner Trunk => _trunk.Value;
    internal FrozenDictionary<string, HeadRunner> Heads { get; }

    /// <summary>The tasks whose head is quarantined (<see cref="HeadHealth"/>) and why.</summary>
    public IEnumerable<(TaskDefinition Task, string Reason)> Quarantined =>
        Tasks.Select(t => (Task: t, Reason: Heads[t.Name].Health.Quarantine)).Where(q => q.Reason is not null).Select(q => (q.Task, q.Reason!));

    /// <summary>True once retired and every lease was released (its sessions references are gone).</summary>
    internal bool IsDrained => Volatile.Read(ref _leases) == 0;

    internal bool SharesTrunkWith(BundleSnapshot other) => ReferenceEquals(_trunk, other._trunk);

    internal bool SharesHeadWith(BundleSnapshot other, string task) =>
        _heads.TryGetValue(task, out SharedSession<HeadRunner>? mine) && other._heads.TryGetValue(task, out SharedSession<HeadRunner>? theirs)
        && ReferenceEquals(mine, theirs);

    internal bool IsHeadDisposed(string task) => _heads[task].IsDisposed;

    internal bool IsTrunkDisposed => _trunk.IsDisposed;

    /// <summary>Creates every session once and checks each graph against the manifest.</summary>
    public static BundleSnapshot Create(ModelBundle bundle, OnnxSessionFactory sessions) => Build(bundle, sessions, previous: null);

    /// <summary>
    /// A snapshot of <paramref name="bundle"/> that shares with <paramref name="previous"/> the
    /// trunk (when the tokenizer and trunk sections are unchanged) and every head whose manifest
    /// entry is unchanged; only the rest is loaded and checked. The caller must hold
    /// <paramref name="previous"/> alive (in service) during the call.
    /// </summary>
    internal static BundleSnapshot Derive(BundleSnapshot previous, ModelBundle bundle, OnnxSessionFactory sessions) => Build(bundle, sessions, previous);

    private static BundleSnapshot Build(ModelBundle bundle, OnnxSessionFactory sessions, BundleSnapshot? previous)
    {
        var taken = new List<Action>();
        bool float16 = GraphSelection.ServesFloat16(bundle, sessions.Precision, sessions.Target);
        try
        {
            BertInputEncoder encoder;
            SharedSession<TrunkRunner> trunk;
            bool sameTrunk = previous is not null
                             && string.Equals(previous.Bundle.Directory, bundle.Directory, StringComparison.Ordinal)
                             && Json(previous.Bundle.Manifest.Trunk) == Json(bundle.Manifest.Trunk)
                             && Json(previous.Bundle.Manifest.Tokenizer) == Json(bundle.Manifest.Tokenizer);
            if (sameTrunk)
            {
                encoder = previous!.Encoder;
                trunk = previous._trunk.AddReference();
                taken.Add(trunk.Release);
            }
            else
            {
                encoder = BertInputEncoder.Create(bundle.VocabPath, bundle.Manifest.Tokenizer);
                (string trunkPath, string trunkFile, string trunkField) = float16
                    ? (bundle.Float16TrunkPath!, bundle.Manifest.Trunk.Float16!.File, "trunk.float16.file")
                    : (bundle.TrunkPath, bundle.Manifest.Trunk.File, "trunk.file");
                InferenceSession trunkSession = CreateSession(() => sessions.CreateSession(trunkPath), trunkPath, trunkFile, trunkField, taken);
                GraphContract.VerifyTrunk(trunkSession, bundle, trunkFile);
                trunk = new SharedSession<TrunkRunner>(new TrunkRunner(trunkSession, bundle.Manifest.Trunk.Inputs, bundle.TrunkOutputsByLayer, sessions.HiddenStateMemory));
                taken[^1] = trunk.Release;
            }

            Dictionary<string, string> previousEntries = sameTrunk ? EntriesByName(previous!.Bundle) : [];
            Dictionary<string, string> entries = EntriesByName(bundle);
            var heads = new Dictionary<string, SharedSession<HeadRunner>>(bundle.Tasks.Count, StringComparer.Ordinal);
            long? headBudget = sessions.HeadMemoryBudgetBytes(new FileInfo(bundle.TrunkPath).Length);
            foreach (TaskDefinition task in bundle.Tasks)
            {
                if (previousEntries.TryGetValue(task.Name, out string? before) && before == entries[task.Name])
                {
                    SharedSession<HeadRunner> shared = previous!._heads[task.Name].AddReference();
                    taken.Add(shared.Release);
                    heads.Add(task.Name, shared);
                    continue;
                }

                heads.Add(task.Name, CreateHead(task, bundle, sessions, float16, headBudget, taken));
            }

            return new BundleSnapshot(bundle, encoder, trunk, heads.ToFrozenDictionary(StringComparer.Ordinal), float16);
        }
        catch
        {
            taken.ForEach(release => release());
            throw;
        }
    }

    /// <summary>A head's runner over a new session of the graph it serves (float16 or not), within its memory budget.</summary>
    private static SharedSession<HeadRunner> CreateHead(TaskDefinition task, ModelBundle bundle, OnnxSessionFactory sessions, bool float16, long? budget, List<Action> taken)
    {
        GraphFile graph = task.Head.For(float16);
        string field = graph.RelativePath == task.Head.RelativePath ? task.Head.ManifestField : $"{task.Head.ManifestField}.float";
        InferenceSession headSession = CreateSession(() => sessions.CreateHeadSession(graph.FullPath, budget), graph.FullPath, graph.RelativePath, $"{field}.file", taken);
        GraphContract.VerifyHead(headSession, task, bundle.Manifest.Trunk, graph.RelativePath);
        var head = new SharedSession<HeadRunner>(new HeadRunner(headSession, task, sessions, budget));
        taken[^1] = head.Release;
        return head;
    }

    private static Dictionary<string, string> EntriesByName(ModelBundle bundle) =>
        bundle.Manifest.Tasks.ToDictionary(t => t.Name, Json, StringComparer.Ordinal);

    private static string Json(TaskManifest task) => JsonSerializer.Serialize(task, BundleManifestJsonContext.Default.TaskManifest);

    private static string Json(TrunkManifest trunk) => JsonSerializer.Serialize(trunk, BundleManifestJsonContext.Default.TrunkManifest);

    private static string Json(TokenizerManifest tokenizer) => JsonSerializer.Serialize(tokenizer, BundleManifestJsonContext.Default.TokenizerManifest);

    private static InferenceSession CreateSession(Func<InferenceSession> create, string path, string file, string field, List<Action> taken)
    {
        try
        {
            InferenceSession session = create();
            taken.Add(session.Dispose);
            return session;
        }
        catch (OnnxRuntimeException ex)
        {
            // ONNX Runtime names the absolute path; admin 422s carry this message, so say the bundle-relative one.
            throw new BundleValidationException(file, field, $"ONNX Runtime cannot load the graph: {ex.Message.Replace(path, file, StringComparison.Ordinal)}", ex);
        }
    }

    /// <summary>Takes a lease for one inference; false when the snapshot has already drained (retry with the current one).</summary>
    internal bool TryAcquire()
    {
        int before;
        do
        {
            before = Volatile.Read(ref _leases);
            if (before <= 0)
            {
                return false;
            }
        }
        while (Interlocked.CompareExchange(ref _leases, before + 1, before) != before);

        return true;
    }

    internal void ReleaseLease()
    {
        if (Interlocked.Decrement(ref _leases) == 0)
        {
            _trunk.Release();
            foreach (SharedSession<HeadRunner> head in _heads.Values)
            {
                head.Release();
            }
        }
    }

    /// <summary>Retires the snapshot: drops the owner's lease; sessions go when the last in-flight inference ends.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _retired, 1) == 0)
        {
            ReleaseLease();
        }
    }
}
