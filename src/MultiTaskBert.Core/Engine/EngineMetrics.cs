using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// The engine's instruments on the <see cref="ServiceMeter"/>: trunk and head timings, rows per
/// trunk pass, and the tasks in service. One instance per host, so that two hosts in one process
/// (the tests) each report their own snapshot.
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    private readonly SnapshotHolder _snapshots;
    private readonly Meter? _ownedMeter;
    private readonly Histogram<double> _trunkDuration;
    private readonly Histogram<double> _headDuration;
    private readonly Histogram<long> _trunkRows;
    private readonly Counter<long> _headFailures;

    /// <param name="snapshots">The holder whose snapshot the loaded-tasks gauge reports.</param>
    /// <param name="meterFactory">The host's meter factory; without one (a benchmark, a tool) the metrics own their meter.</param>
    public EngineMetrics(SnapshotHolder snapshots, IMeterFactory? meterFactory = null)
    {
        ArgumentNullException.ThrowIfNull(snapshots);
        _snapshots = snapshots;
        Meter meter = meterFactory?.Create(ServiceMeter.Name) ?? (_ownedMeter = new Meter(ServiceMeter.Name));
        Meter = meter;
        _trunkDuration = meter.CreateHistogram<double>("mtbert.trunk.duration", unit: "s", description: "Time of one trunk pass (one batch).");
        _headDuration = meter.CreateHistogram<double>("mtbert.head.duration", unit: "s", description: "Time of one head run on a batch, by task.");
        _trunkRows = meter.CreateHistogram<long>("mtbert.trunk.rows", unit: "{row}", description: "Rows (sequences) per trunk pass.");

        _headFailures = meter.CreateCounter<long>("mtbert.head.failures", unit: "{run}",
            description: "Head runs that failed their checks (not finite, wrong shape, ONNX Runtime error, past HeadGuards:MaxRunMs), by task.");
        meter.CreateObservableGauge("mtbert.heads.quarantined", ObserveQuarantined, unit: "{task}",
            description: "Tasks whose head is quarantined (1 per task, labelled with its version): they answer an error until replaced or removed.");

        // One series per loaded task with its version as a label: value 1 (the versions serving now).
        meter.CreateObservableGauge("mtbert.tasks.loaded", ObserveTasks, unit: "{task}",
            description: "Tasks in service (1 per task, labelled with its version).");
    }

    /// <summary>The meter the instruments are on (tests listen to it).</summary>
    internal Meter Meter { get; }

    internal void RecordTrunk(long startTimestamp, long rows)
    {
        _trunkDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
        _trunkRows.Record(rows);
    }

    internal void RecordHead(long startTimestamp, TaskDefinition task) =>
        _headDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, new KeyValuePair<string, object?>("task", task.Name));

    internal void RecordHeadFailure(TaskDefinition task) =>
        _headFailures.Add(1, new KeyValuePair<string, object?>("task", task.Name));

    private IEnumerable<Measurement<int>> ObserveQuarantined() =>
        _snapshots.Current is { } snapshot
            ? snapshot.Quarantined.Select(q => new Measurement<int>(1,
                new KeyValuePair<string, object?>("task", q.Task.Name),
                new KeyValuePair<string, object?>("version", q.Task.Version.ToString(CultureInfo.InvariantCulture))))
            : [];

    private IEnumerable<Measurement<int>> ObserveTasks()
    {
        BundleSnapshot? snapshot = _snapshots.Current;
        if (snapshot is null)
        {
            return [];
        }

        return snapshot.Tasks.Select(t => new Measurement<int>(1,
            new KeyValuePair<string, object?>("task", t.Name),
            new KeyValuePair<string, object?>("version", t.Version.ToString(CultureInfo.InvariantCulture)),
            new KeyValuePair<string, object?>("model", snapshot.ModelId)));
    }

    public void Dispose() => _ownedMeter?.Dispose();
}
