using System.Diagnostics;
using System.Diagnostics.Metrics;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Core.Engine;

/// <summary>
/// The engine's instruments on the shared "MultiTaskBert" meter (System.Diagnostics.Metrics; the
/// Api exports every instrument of that meter to Prometheus, including the batching queue's).
/// </summary>
public static class EngineMetrics
{
    /// <summary>Name of the meter every MultiTaskBert instrument is recorded on.</summary>
    public const string MeterName = "MultiTaskBert";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Histogram<double> TrunkDuration = Meter.CreateHistogram<double>(
        "mtbert.trunk.duration", unit: "s", description: "Time of one trunk pass (one batch).");

    private static readonly Histogram<double> HeadDuration = Meter.CreateHistogram<double>(
        "mtbert.head.duration", unit: "s", description: "Time of one head run on a batch, by task.");

    private static readonly Histogram<long> TrunkRows = Meter.CreateHistogram<long>(
        "mtbert.trunk.rows", unit: "{row}", description: "Rows (sequences) per trunk pass.");

    private static LoadedBundle? _snapshot;

    static EngineMetrics()
    {
        // One series per loaded task with its version as a label: value 1 (the versions serving now).
        Meter.CreateObservableGauge("mtbert.tasks.loaded", ObserveTasks, unit: "{task}",
            description: "Tasks in service (1 per task, labelled with its version).");
    }

    internal static void RecordTrunk(long startTimestamp, long rows)
    {
        TrunkDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds);
        TrunkRows.Record(rows);
    }

    internal static void RecordHead(long startTimestamp, TaskDefinition task) =>
        HeadDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, new KeyValuePair<string, object?>("task", task.Name));

    /// <summary>The snapshot now in service (for the loaded-tasks gauge).</summary>
    internal static void RecordSnapshot(LoadedBundle snapshot) => Volatile.Write(ref _snapshot, snapshot);

    private static IEnumerable<Measurement<int>> ObserveTasks()
    {
        LoadedBundle? snapshot = Volatile.Read(ref _snapshot);
        if (snapshot is null)
        {
            return [];
        }

        return snapshot.Tasks.Select(t => new Measurement<int>(1,
            new KeyValuePair<string, object?>("task", t.Name),
            new KeyValuePair<string, object?>("version", t.Version.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new KeyValuePair<string, object?>("model", snapshot.ModelId)));
    }
}
