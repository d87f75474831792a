using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// The serving parts wired together for a host without a DI container (benchmarks, tools, tests):
/// one <see cref="SnapshotHolder"/>, the <see cref="MultiTaskEngine"/> that runs its snapshots and
/// the <see cref="BundleRegistry"/> that loads and changes them. The service wires the same parts
/// in its container instead.
/// </summary>
public sealed class ServingParts : IDisposable
{
    /// <param name="sessions">Creates every session (and says on which device).</param>
    /// <param name="meterFactory">The host's meters (null: a meter of its own).</param>
    /// <param name="loggerFactory">The host's loggers (null: none).</param>
    /// <param name="registryOptions">How the registry publishes and follows versions (null: its defaults).</param>
    /// <param name="batching">The <c>Batching</c> section (null: its defaults).</param>
    /// <param name="guards">The <c>HeadGuards</c> section (null: its defaults).</param>
    public ServingParts(OnnxSessionFactory sessions, IMeterFactory? meterFactory = null, ILoggerFactory? loggerFactory = null,
        RegistryOptions? registryOptions = null, BatchingOptions? batching = null, HeadGuardOptions? guards = null)
    {
        Snapshots = new SnapshotHolder();
        Metrics = new EngineMetrics(Snapshots, meterFactory);
        Engine = new MultiTaskEngine(Snapshots, Metrics, sessions, Options.Create(batching ?? new BatchingOptions()), Options.Create(guards ?? new HeadGuardOptions()),
            (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<MultiTaskEngine>());
        Registry = new BundleRegistry(sessions, Snapshots, Engine, (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<BundleRegistry>(), registryOptions);
    }

    public SnapshotHolder Snapshots { get; }

    public EngineMetrics Metrics { get; }

    public MultiTaskEngine Engine { get; }

    public BundleRegistry Registry { get; }

    /// <summary>Retires the snapshot in service (in-flight requests finish on it), then the rest.</summary>
    public void Dispose()
    {
        Snapshots.Dispose();
        Registry.Dispose();
        Metrics.Dispose();
    }
}
