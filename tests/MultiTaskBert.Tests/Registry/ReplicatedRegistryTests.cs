using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Registry;

/// <summary>
/// Issue #28 in one process: two registries (two replicas) on one bundle folder. Each change
/// publishes a version through the folder's compare-and-swap; the other follows it; a change based
/// on an old version is applied again on the new one; nothing is lost; a bad version is not served.
/// </summary>
public sealed class ReplicatedRegistryTests : IDisposable
{
    private const string Single = "sst2";
    private readonly OnnxSessionFactory _sessions = new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
    private readonly BundleCopy _bundle = new();
    private readonly List<ServingParts> _replicas = [];

    private async Task<ServingParts> ReplicaAsync(RegistryOptions? options = null)
    {
        var replica = new ServingParts(_sessions, registryOptions: options);
        _replicas.Add(replica);
        await replica.Registry.LoadAsync(_bundle.Directory);
        return replica;
    }

    /// <summary>A new task entry reading the fixture's sst2 head (a file inside the bundle, so no upload).</summary>
    private JsonObject NewTask(string name, int version = 1)
    {
        JsonObject entry = (JsonObject)_bundle.ReadManifest()["tasks"]!.AsArray().First(t => (string?)t!["name"] == Single)!.DeepClone();
        entry["name"] = name;
        entry["version"] = version;
        return entry;
    }

    private static string[] TaskNames(ServingParts replica) => [.. replica.Snapshots.Current!.Tasks.Select(t => t.Name).Order(StringComparer.Ordinal)];

    [Fact]
    public async Task A_change_through_one_replica_is_served_by_the_other_after_it_follows()
    {
        ServingParts a = await ReplicaAsync();
        ServingParts b = await ReplicaAsync();

        TaskChangeResult added = await a.Registry.AddOrReplaceTaskAsync(NewTask("added-on-a"), null);
        Assert.Equal(1, added.BundleVersion);
        Assert.DoesNotContain("added-on-a", TaskNames(b));
        Assert.Equal(0, b.Registry.Status!.Served);

        VersionStatus status = await b.Registry.FollowAsync();

        Assert.Equal(0, status.Behind);
        Assert.Contains("added-on-a", TaskNames(b));
        Assert.Equal(a.Snapshots.Current!.ModelId, b.Snapshots.Current!.ModelId);

        // A removal through B reaches A.
        await b.Registry.RemoveTaskAsync("added-on-a");
        await a.Registry.FollowAsync();
        Assert.DoesNotContain("added-on-a", TaskNames(a));
        Assert.Equal(b.Snapshots.Current!.ModelId, a.Snapshots.Current!.ModelId);
    }

    [Fact]
    public async Task A_change_based_on_an_old_version_is_applied_again_on_the_new_one_not_lost()
    {
        ServingParts a = await ReplicaAsync();
        ServingParts b = await ReplicaAsync();
        await a.Registry.AddOrReplaceTaskAsync(NewTask("from-a"), null);

        // B has not followed yet: its change is built on version 0, loses version 1, and is re-applied as version 2.
        TaskChangeResult fromB = await b.Registry.AddOrReplaceTaskAsync(NewTask("from-b"), null);

        Assert.Equal(2, fromB.BundleVersion);
        Assert.Contains("from-a", TaskNames(b));
        Assert.Contains("from-b", TaskNames(b));
        await a.Registry.FollowAsync();
        Assert.Equal(TaskNames(b), TaskNames(a));
        JsonObject published = _bundle.ReadNewestManifest();
        Assert.Equal(["from-a", "from-b"], published["tasks"]!.AsArray().Select(t => (string)t!["name"]!).Where(n => n.StartsWith("from-", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Concurrent_changes_through_two_replicas_are_all_published_and_both_converge()
    {
        ServingParts a = await ReplicaAsync();
        ServingParts b = await ReplicaAsync();
        const int PerReplica = 10;

        await Task.WhenAll(
            Task.Run(async () => { for (int i = 0; i < PerReplica; i++) { await a.Registry.AddOrReplaceTaskAsync(NewTask($"a-{i}"), null); } }),
            Task.Run(async () => { for (int i = 0; i < PerReplica; i++) { await b.Registry.AddOrReplaceTaskAsync(NewTask($"b-{i}"), null); } }));
        VersionStatus statusA = await a.Registry.FollowAsync();
        VersionStatus statusB = await b.Registry.FollowAsync();

        Assert.Equal(2 * PerReplica, statusA.Served);
        Assert.Equal(statusA.Served, statusB.Served);
        Assert.Equal(statusA.Model, statusB.Model);
        string[] added = [.. TaskNames(a).Where(n => n.StartsWith("a-", StringComparison.Ordinal) || n.StartsWith("b-", StringComparison.Ordinal))];
        Assert.Equal(2 * PerReplica, added.Length);
        Assert.Equal(TaskNames(a), TaskNames(b));
    }

    [Fact]
    public async Task A_version_that_fails_validation_is_not_served_and_is_reported()
    {
        ServingParts a = await ReplicaAsync();
        ServingParts b = await ReplicaAsync();
        BundleSnapshot serving = b.Snapshots.Current!;
        JsonObject broken = _bundle.ReadManifest();
        broken["tasks"]![0]!["branchLayer"] = 9;
        Assert.True(await new FolderVersionStore(_bundle.Directory).TryPublishAsync(1, broken, CancellationToken.None));

        VersionStatus status = await b.Registry.FollowAsync();

        Assert.Same(serving, b.Snapshots.Current);
        Assert.Equal(0, status.Served);
        Assert.Equal(1, status.Refused);
        Assert.Contains("branchLayer", status.RefusedReason);
        Assert.Equal(1, status.Refusals);
        Assert.Contains("version 1 refused", status.Describe());
        Assert.Equal(1, (await b.Registry.FollowAsync()).Refusals); // reported once, not tried at every poll

        // An edit would build on the refused version: 409; a rollback publishes a served one again.
        await Assert.ThrowsAsync<TaskConflictException>(() => a.Registry.RemoveTaskAsync(Single));
        RollbackResult rolledBack = await a.Registry.RollbackAsync(0);
        Assert.Equal(2, rolledBack.Version);
        status = await b.Registry.FollowAsync();
        Assert.Equal(2, status.Served);
        Assert.Null(status.Refused);
    }

    [Fact]
    public async Task Rollback_publishes_an_earlier_version_as_the_newest_and_history_lists_them()
    {
        ServingParts a = await ReplicaAsync();
        string baseModel = a.Snapshots.Current!.ModelId;
        await a.Registry.AddOrReplaceTaskAsync(NewTask("short-lived"), null);

        RollbackResult result = await a.Registry.RollbackAsync(0);
        VersionHistory history = await a.Registry.ListVersionsAsync();

        Assert.Equal(2, result.Version);
        Assert.NotEqual(baseModel, result.Model); // a new version has a new model id
        Assert.DoesNotContain("short-lived", TaskNames(a));
        Assert.Equal([2L, 1L, 0L], history.Versions.Select(v => v.Number));
        Assert.Equal("rolled back to version 0", history.Versions[0].Change);
        Assert.Equal("added task short-lived version 1", history.Versions[1].Change);
        Assert.Equal(baseModel, history.Versions[2].Model);
        Assert.Equal(2, history.Served);
        await Assert.ThrowsAsync<VersionNotFoundException>(() => a.Registry.RollbackAsync(7));
    }

    [Fact]
    public async Task Garbage_collection_keeps_the_newest_versions_the_base_and_what_they_read()
    {
        ServingParts a = await ReplicaAsync(new RegistryOptions { KeepVersions = 2, CollectGrace = TimeSpan.Zero });
        byte[] head = await File.ReadAllBytesAsync(_bundle.PathOf("heads/sst2.onnx"));
        for (int version = 2; version <= 5; version++)
        {
            using var upload = new MemoryStream(head);
            JsonObject entry = NewTask(Single, version);
            entry["head"]!.AsObject().Remove("sha256");
            await a.Registry.AddOrReplaceTaskAsync(entry, upload);
        }

        Assert.Equal([3L, 4L], await new FolderVersionStore(_bundle.Directory).ListAsync(CancellationToken.None));
        string[] heads = [.. Directory.GetFiles(_bundle.PathOf("heads"), "sst2*").Select(Path.GetFileName).Order(StringComparer.Ordinal)!];
        Assert.Equal(3, heads.Length); // the base's sst2.onnx, and v4's and v5's uploads
        Assert.Contains("sst2.onnx", heads);
        Assert.Contains(heads, h => h!.StartsWith("sst2-v4-", StringComparison.Ordinal));
        Assert.Contains(heads, h => h!.StartsWith("sst2-v5-", StringComparison.Ordinal));
        await Assert.ThrowsAsync<VersionNotFoundException>(() => a.Registry.RollbackAsync(1));
    }

    [Fact]
    public async Task A_replica_started_on_a_folder_with_published_versions_serves_the_newest()
    {
        ServingParts a = await ReplicaAsync();
        await a.Registry.AddOrReplaceTaskAsync(NewTask("published-before"), null);

        ServingParts late = await ReplicaAsync();

        Assert.Contains("published-before", TaskNames(late));
        Assert.Equal(1, late.Registry.Status!.Served);
        Assert.Equal(a.Snapshots.Current!.ModelId, late.Snapshots.Current!.ModelId);
    }

    [Fact]
    public async Task The_same_upload_sent_twice_at_once_leaves_the_head_file_the_published_version_reads()
    {
        // A double submit through two replicas: one upload creates heads/<name>-v1-<sha>.onnx, the other finds it
        // there; whichever publishes, the other is refused (same version) and must not delete the file in service.
        ServingParts a = await ReplicaAsync();
        ServingParts b = await ReplicaAsync();
        byte[] head = await File.ReadAllBytesAsync(_bundle.PathOf((string)NewTask("any")["head"]!["file"]!));
        for (int round = 0; round < 12; round++)
        {
            string name = $"twice-{round}";
            JsonObject Entry()
            {
                JsonObject entry = NewTask(name);
                ((JsonObject)entry["head"]!).Remove("file");
                ((JsonObject)entry["head"]!).Remove("sha256");
                return entry;
            }

            Task<TaskChangeResult>[] uploads = [
                Task.Run(() => a.Registry.AddOrReplaceTaskAsync(Entry(), new MemoryStream(head))),
                Task.Run(() => b.Registry.AddOrReplaceTaskAsync(Entry(), new MemoryStream(head)))];
            try
            {
                await Task.WhenAll(uploads);
            }
            catch (TaskConflictException)
            {
                // The second of the two: task already loaded at version 1.
            }

            TaskChangeResult won = await uploads.Single(u => u.IsCompletedSuccessfully);
            Assert.True(File.Exists(_bundle.PathOf(won.HeadFile!)), $"round {round}: {won.HeadFile}, read by version {won.BundleVersion}, was deleted");
        }
    }

    [Fact]
    public async Task The_compare_and_swap_lets_exactly_one_of_many_writers_publish_a_number()
    {
        var store = new FolderVersionStore(_bundle.Directory);
        JsonObject manifest = _bundle.ReadManifest();

        // Thirty numbers, sixteen writers each: with File.Move(overwrite: false), which is not exclusive
        // on Unix, about one number in eight had two or three winners (ExclusiveName).
        const int Numbers = 30;
        for (long number = 1; number <= Numbers; number++)
        {
            long n = number;
            bool[] won = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => store.TryPublishAsync(n, (JsonObject)manifest.DeepClone(), CancellationToken.None))));
            Assert.True(won.Count(w => w) == 1, $"version {n}: {won.Count(w => w)} writers published it");
        }

        Assert.Equal(Numbers, await store.FindNewestAsync(0, CancellationToken.None));
        Assert.Empty(Directory.GetFiles(_bundle.PathOf("versions"), "*.tmp"));
        Assert.NotNull(await store.ReadAsync(1, CancellationToken.None));
        Assert.Equal(BundleLoader.ManifestFileName, store.NameOf(0));
    }

    /// <summary>
    /// The folder store with another replica that always publishes first: each number this one
    /// tries was just taken (a real version written into the real folder, as a replica would).
    /// </summary>
    private sealed class AlwaysOvertakenStore(string directory) : IBundleVersionStore
    {
        private readonly FolderVersionStore _folder = new(directory);

        public string NameOf(long number) => _folder.NameOf(number);

        public Task<long> FindNewestAsync(long atLeast, CancellationToken cancellationToken) => _folder.FindNewestAsync(atLeast, cancellationToken);

        public Task<PublishedVersion?> ReadAsync(long number, CancellationToken cancellationToken) => _folder.ReadAsync(number, cancellationToken);

        public async Task<bool> TryPublishAsync(long number, JsonObject manifest, CancellationToken cancellationToken)
        {
            JsonObject theirs = (JsonObject)manifest.DeepClone();
            theirs["version"] = $"{theirs["version"]}-other";
            Assert.True(await _folder.TryPublishAsync(number, theirs, cancellationToken));
            return await _folder.TryPublishAsync(number, manifest, cancellationToken);
        }

        public Task<IReadOnlyList<long>> ListAsync(CancellationToken cancellationToken) => _folder.ListAsync(cancellationToken);

        public Task DeleteAsync(long number, CancellationToken cancellationToken) => _folder.DeleteAsync(number, cancellationToken);
    }

    [Fact]
    public async Task A_change_that_loses_every_race_is_a_409_after_the_configured_attempts_and_serves_the_winners()
    {
        var options = new RegistryOptions { PublishAttempts = 3 };
        var replica = new ServingParts(_sessions, registryOptions: options);
        _replicas.Add(replica);
        var registry = new BundleRegistry(_sessions, replica.Snapshots, replica.Engine, NullLogger<BundleRegistry>.Instance, options, d => new AlwaysOvertakenStore(d));
        await registry.LoadAsync(_bundle.Directory);

        TaskConflictException conflict = await Assert.ThrowsAsync<TaskConflictException>(() => registry.RollbackAsync(0));

        Assert.Equal("(bundle)", conflict.Field);
        Assert.Contains("Registry:PublishAttempts", conflict.Message);
        Assert.Equal(3, (await registry.FollowAsync()).Served); // each winner's version was followed, none lost
        Assert.EndsWith("-other", replica.Snapshots.Current!.ModelId);
        registry.Dispose();
    }

    public void Dispose()
    {
        _replicas.ForEach(r => r.Dispose());
        _sessions.Dispose();
        _bundle.Dispose();
    }
}
