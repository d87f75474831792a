namespace MultiTaskBert.Tests.Support;

/// <summary>
/// Tests whose hosts are meant to fail start-up. WebApplicationFactory observes Program's host
/// through a process-wide DiagnosticListener; while other hosts start and stop in parallel, a
/// failing host can surface another host's teardown error (an ObjectDisposedException) instead of
/// its own. This collection runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class StartUpCollection
{
    public const string Name = "start-up";
}
