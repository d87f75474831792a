using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Admin;

/// <summary>Snapshot leases: in-flight work finishes on its snapshot; sessions go after the last lease.</summary>
public sealed class HotSwapEngineTests : IAsyncLifetime, IDisposable
{
    private readonly BundleCopy _bundle = new();
    private readonly OnnxSessionFactory _sessions = new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
    private readonly ServingParts _serving;
    private readonly MultiTaskEngine _engine;
    private readonly BundleRegistry _registry;

    public HotSwapEngineTests()
    {
        _serving = new ServingParts(_sessions);
        _engine = _serving.Engine;
        _registry = _serving.Registry;
    }

    public Task InitializeAsync() => _registry.LoadAsync(_bundle.Directory);

    public Task DisposeAsync() => Task.CompletedTask;

    private JsonObject NextVersion(string task, int version)
    {
        var entry = (JsonObject)_bundle.ReadManifest()["tasks"]!.AsArray().First(t => (string?)t!["name"] == task)!.DeepClone();
        entry["version"] = version;
        entry["head"]!.AsObject().Remove("sha256");
        return entry;
    }

    [Fact]
    public async Task A_leased_snapshot_keeps_its_sessions_until_released()
    {
        BundleSnapshot old = _engine.Current!;
        Assert.True(old.TryAcquire()); // an in-flight request

        await _registry.AddOrReplaceTaskAsync(NextVersion("sst2", 2), null);

        Assert.NotSame(old, _engine.Current);
        Assert.False(old.IsDrained);
        Assert.False(old.IsHeadDisposed("sst2"));
        Assert.Equal(1, old.Tasks.Single(t => t.Name == "sst2").Version);

        old.ReleaseLease();

        Assert.True(old.IsDrained);
        Assert.True(old.IsHeadDisposed("sst2"));
        Assert.False(_engine.Current!.IsTrunkDisposed);
        Assert.False(_engine.Current!.IsHeadDisposed("snips"));
        Assert.False(old.TryAcquire());
    }

    [Fact]
    public async Task Replacing_heads_under_concurrent_load_fails_no_request()
    {
        using var stop = new CancellationTokenSource();
        int served = 0;
        Task[] load = [.. Enumerable.Range(0, 3).Select(_ => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                RequestPredictions result = await _engine.ClassifyAsync([new ClassifyInput("a fine film", "a good film")], ["rte", "snips", "sst2", "stsb"]);
                Assert.Equal(4, result.Results[0].Count);
                Interlocked.Increment(ref served);
            }
        }))];

        for (int version = 2; version <= 8; version++)
        {
            await _registry.AddOrReplaceTaskAsync(NextVersion(version % 2 == 0 ? "sst2" : "rte", version), null);
        }

        await stop.CancelAsync();
        await Task.WhenAll(load);
        Assert.True(served > 0);
        Assert.Equal(8, _engine.Current!.Tasks.Single(t => t.Name == "sst2").Version);
        Assert.Equal(7, _engine.Current!.Tasks.Single(t => t.Name == "rte").Version);
    }

    public void Dispose()
    {
        _serving.Dispose();
        _sessions.Dispose();
        _bundle.Dispose();
    }
}
