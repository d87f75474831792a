using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Operations;

/// <summary>
/// Gives memory back once batches stop: the largest batches leave the server GC's regions and the
/// C allocator's heaps (ONNX Runtime's freed buffers, per-thread arenas) committed, and neither
/// returns them while no allocation triggers a collection, so an idle service kept 1.5-1.8x its
/// resting size (docs/reliability.md). After <see cref="MemoryOptions.IdleTrimSeconds"/> without a
/// finished batch the trimmer runs one aggressive collection and, on glibc, <c>malloc_trim(0)</c>.
/// </summary>
internal sealed partial class IdleMemoryTrimmer(MultiTaskEngine engine, IOptions<MemoryOptions> options, ILogger<IdleMemoryTrimmer> logger) : BackgroundService
{
    private bool _nativeTrimAvailable = true;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        MemoryOptions settings = options.Value;
        if (settings.IdleTrimSeconds == 0)
        {
            return;
        }

        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(settings.IdleTrimSeconds));
        long seen = engine.RunsFinished;
        bool ranSinceTrim = false;
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
        {
            long now = engine.RunsFinished;
            if (now != seen)
            {
                (seen, ranSinceTrim) = (now, true);
                continue;
            }

            if (ranSinceTrim)
            {
                ranSinceTrim = false;
                Trim(settings.ReturnNativeMemory);
            }
        }
    }

    private void Trim(bool returnNativeMemory)
    {
        long before = Environment.WorkingSet;
        long start = Stopwatch.GetTimestamp();
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (returnNativeMemory && _nativeTrimAvailable)
        {
            try
            {
                _ = MallocTrim(0);
            }
            catch (Exception ex) when (ex is EntryPointNotFoundException or DllNotFoundException)
            {
                _nativeTrimAvailable = false; // not glibc (musl, macOS, Windows): the collection alone
            }
        }

        long after = Environment.WorkingSet;
        double milliseconds = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        LogTrimmed(logger, before >> 20, after >> 20, milliseconds);
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);

    [LoggerMessage(Level = LogLevel.Information, Message = "Idle memory trim: working set {BeforeMiB} MiB -> {AfterMiB} MiB in {Milliseconds:F0} ms")]
    private static partial void LogTrimmed(ILogger logger, long beforeMiB, long afterMiB, double milliseconds);
}
