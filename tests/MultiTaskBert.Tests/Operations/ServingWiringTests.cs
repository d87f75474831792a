using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using MultiTaskBert.Core;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Operations;

/// <summary>How the host wires the serving parts: one snapshot holder for all, metrics on the host's meter factory.</summary>
public sealed class ServingWiringTests : IDisposable
{
    private readonly ConfiguredApiFactory _factory = new(new Dictionary<string, string?>());

    [Fact]
    public void Engine_batcher_and_registry_share_the_holder_the_bundle_was_loaded_into()
    {
        _factory.CreateClient().Dispose(); // starts the host: the bundle is loaded
        IServiceProvider services = _factory.Services;
        SnapshotHolder holder = services.GetRequiredService<SnapshotHolder>();

        Assert.NotNull(holder.Current);
        Assert.Same(holder, services.GetRequiredService<MultiTaskEngine>().Snapshots);
        Assert.Same(holder.Current, services.GetRequiredService<MultiTaskEngine>().Current);
        Assert.Equal(holder.Current.Bundle.Directory, services.GetRequiredService<BundleRegistry>().BundleDirectory);
    }

    [Fact]
    public void Engine_and_batcher_metrics_are_on_the_service_meter_of_this_host()
    {
        IServiceProvider services = _factory.Services;
        IMeterFactory meters = services.GetRequiredService<IMeterFactory>();

        Meter engine = services.GetRequiredService<EngineMetrics>().Meter;
        Meter batcher = services.GetRequiredService<MicroBatcher>().Meter;

        Assert.Equal(ServiceMeter.Name, engine.Name);
        Assert.Same(meters, engine.Scope);
        Assert.Same(engine, batcher); // the factory hands out one meter per name
    }

    public void Dispose() => _factory.Dispose();
}
