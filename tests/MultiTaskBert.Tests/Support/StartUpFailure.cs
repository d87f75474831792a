using System.Reflection;

namespace MultiTaskBert.Tests.Support;

/// <summary>
/// Runs the service's real entry point with settings that must stop start-up, and returns what it
/// threw. Not through WebApplicationFactory: when start-up fails fast, Program's app.Run() disposes
/// the host while the factory's deferred host is still about to read its services, so the factory
/// sometimes reports an ObjectDisposedException instead of the real error (a race, 1 run in 3 here).
/// </summary>
public static class StartUpFailure
{
    private static readonly TimeSpan StartUpLimit = TimeSpan.FromSeconds(60);

    public static async Task<Exception> OfAsync(IReadOnlyDictionary<string, string?> settings)
    {
        var all = new Dictionary<string, string?>
        {
            ["environment"] = "Testing",
            ["urls"] = "http://127.0.0.1:0", // should it start after all, it binds no fixed port
            ["Model:BundlePath"] = TestBundle.Directory,
            ["Inference:Device"] = "cpu",
            ["Serilog:MinimumLevel:Default"] = "Fatal",
        };
        foreach ((string key, string? value) in settings)
        {
            all[key] = value;
        }

        string[] args = [.. all.Select(kv => $"--{kv.Key}={kv.Value}")];
        MethodInfo entryPoint = typeof(Program).Assembly.EntryPoint
            ?? throw new InvalidOperationException("the service assembly has no entry point");

        // WebApplicationFactory picks up any host built in the process while it creates one; build
        // this host under the same lock so no concurrently created test host takes it for its own.
        Task run;
        await ApiFactory.HostCreation.WaitAsync();
        try
        {
            run = Task.Run(() => entryPoint.Invoke(null, [args]));
            if (await Task.WhenAny(run, Task.Delay(StartUpLimit)) != run)
            {
                Assert.Fail($"the service started (or still runs after {StartUpLimit.TotalSeconds} s) instead of refusing {string.Join(", ", settings.Keys)}");
            }
        }
        finally
        {
            ApiFactory.HostCreation.Release();
        }

        Exception thrown = await Assert.ThrowsAnyAsync<Exception>(() => run);
        return thrown is TargetInvocationException { InnerException: { } inner } ? inner : thrown;
    }
}
