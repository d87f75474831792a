using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Engine;

/// <summary>
/// The engine's metrics are instances on a host's meter factory: each host reports its own
/// snapshot (two hosts in one process no longer share one), under the service's one meter name.
/// </summary>
public sealed class EngineMetricsTests : IDisposable
{
    private readonly OnnxSessionFactory _sessions = new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);
    private readonly ServiceProvider _hostA = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly ServiceProvider _hostB = new ServiceCollection().AddMetrics().BuildServiceProvider();

    private ServingParts Serve(ServiceProvider host) => new(_sessions, host.GetRequiredService<IMeterFactory>());

    [Fact]
    public void The_instruments_are_on_the_service_meter_from_the_hosts_factory()
    {
        IMeterFactory factory = _hostA.GetRequiredService<IMeterFactory>();
        using ServingParts serving = new(_sessions, factory);
        using var recorder = new Recorder(serving.Metrics.Meter);

        Assert.Equal(ServiceMeter.Name, serving.Metrics.Meter.Name);
        Assert.Same(factory, serving.Metrics.Meter.Scope);
        Assert.Equal(
            [("mtbert.head.duration", "s"), ("mtbert.head.failures", "{run}"), ("mtbert.heads.quarantined", "{task}"), ("mtbert.tasks.loaded", "{task}"), ("mtbert.trunk.duration", "s"), ("mtbert.trunk.rows", "{row}")],
            recorder.Instruments.Order());
    }

    [Fact]
    public async Task Each_host_reports_the_tasks_of_its_own_snapshot()
    {
        using ServingParts a = Serve(_hostA);
        using ServingParts b = Serve(_hostB);
        using var recordA = new Recorder(a.Metrics.Meter);
        using var recordB = new Recorder(b.Metrics.Meter);

        await a.Registry.LoadAsync(TestBundle.Directory);

        Assert.Equal(
            TestBundle.Manifest.Tasks.Select(t => $"{t.Name}@{t.Version}").Order(),
            recordA.LoadedTasks().Select(t => $"{t["task"]}@{t["version"]}").Order());
        Assert.All(recordA.LoadedTasks(), t => Assert.Equal(a.Engine.Current!.ModelId, t["model"]));
        Assert.Empty(recordB.LoadedTasks()); // host B loaded nothing
    }

    [Fact]
    public async Task A_run_records_the_trunk_rows_and_every_heads_time_by_task()
    {
        using ServingParts serving = Serve(_hostA);
        await serving.Registry.LoadAsync(TestBundle.Directory);
        using var recorder = new Recorder(serving.Metrics.Meter);
        string task = TestBundle.SingleClassificationTask.Name;

        await serving.Engine.ClassifyAsync([new ClassifyInput("one"), new ClassifyInput("two"), new ClassifyInput("three")], [task]);

        Assert.Equal([3.0], recorder.Values("mtbert.trunk.rows"));
        Assert.Single(recorder.Values("mtbert.trunk.duration"));
        (double seconds, string? taskTag) = Assert.Single(recorder.Tagged("mtbert.head.duration"));
        Assert.Equal(task, taskTag);
        Assert.True(seconds >= 0);
    }

    [Fact]
    public async Task A_cpu_engine_cuts_a_batch_into_trunk_passes_of_at_most_512_padded_tokens_by_default()
    {
        using ServingParts serving = Serve(_hostA);
        await serving.Registry.LoadAsync(TestBundle.Directory);
        using var recorder = new Recorder(serving.Metrics.Meter);
        int longest = serving.Engine.Current!.Bundle.Manifest.Tokenizer.MaxSequenceLength;
        // Words enough to fill the longest sequence: every row is `longest` tokens after truncation.
        var input = new ClassifyInput(string.Join(' ', Enumerable.Repeat("word", longest)));

        await serving.Engine.ClassifyAsync([.. Enumerable.Repeat(input, 32)], [TestBundle.SingleClassificationTask.Name]);

        double[] passes = recorder.Values("mtbert.trunk.rows");
        Assert.Equal(32, passes.Sum());
        Assert.Equal(Math.Ceiling(32.0 / Math.Max(1, 512 / longest)), passes.Length);
        Assert.All(passes, rows => Assert.True(rows == 1 || rows * longest <= 512, $"a pass of {rows} rows of {longest} tokens"));
    }

    public void Dispose()
    {
        _hostA.Dispose();
        _hostB.Dispose();
        _sessions.Dispose();
    }

    /// <summary>Listens to one meter's instruments (by reference, so other hosts' meters of the same name are not heard).</summary>
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly ConcurrentQueue<(string Name, double Value, Dictionary<string, object?> Tags)> _measurements = new();
        private readonly ConcurrentBag<(string Name, string? Unit)> _instruments = [];

        public Recorder(Meter meter)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter, meter))
                {
                    _instruments.Add((instrument.Name, instrument.Unit));
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((i, value, tags, _) => Add(i, value, tags));
            _listener.SetMeasurementEventCallback<long>((i, value, tags, _) => Add(i, value, tags));
            _listener.SetMeasurementEventCallback<int>((i, value, tags, _) => Add(i, value, tags));
            _listener.Start();
        }

        public IEnumerable<(string Name, string? Unit)> Instruments => _instruments;

        public double[] Values(string name) => [.. _measurements.Where(m => m.Name == name).Select(m => m.Value)];

        public (double Value, string? Task)[] Tagged(string name) =>
            [.. _measurements.Where(m => m.Name == name).Select(m => (m.Value, m.Tags.GetValueOrDefault("task") as string))];

        /// <summary>One observation of the loaded-tasks gauge: the tags of each series.</summary>
        public List<Dictionary<string, object?>> LoadedTasks()
        {
            _measurements.Clear();
            _listener.RecordObservableInstruments();
            return [.. _measurements.Where(m => m.Name == "mtbert.tasks.loaded").Select(m => m.Tags)];
        }

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var copy = new Dictionary<string, object?>(StringComparer.Ordinal);
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                copy[tag.Key] = tag.Value;
            }

            _measurements.Enqueue((instrument.Name, value, copy));
        }

        public void Dispose() => _listener.Dispose();
    }
}
