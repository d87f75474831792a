using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.Hosting;

namespace MultiTaskBert.Tests.Support;

/// <summary>The real API pipeline over the fixture bundle on CPU.</summary>
public class ApiFactory : WebApplicationFactory<Program>
{
    /// <summary>Configuration overrides on top of the defaults below.</summary>
    protected virtual IReadOnlyDictionary<string, string?> Settings { get; } = new Dictionary<string, string?>();

    // WebApplicationFactory catches Program's host build through a process-wide DiagnosticListener,
    // so hosts built at the same time by test classes running in parallel can pick up each other's
    // settings (a start-up-failure test then sees a host that starts). Build one host at a time;
    // the tests themselves still run in parallel. See dotnet/aspnetcore#38335, FastEndpoints#1121.
    internal static readonly SemaphoreSlim HostCreation = new(1, 1);

    protected override IHost CreateHost(IHostBuilder builder)
    {
        HostCreation.Wait();
        try
        {
            return base.CreateHost(builder);
        }
        finally
        {
            HostCreation.Release();
        }
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Model:BundlePath", TestBundle.Directory);
        builder.UseSetting("Inference:Device", "cpu");
        builder.UseSetting("Serilog:MinimumLevel:Default", "Warning");
        foreach ((string key, string? value) in Settings)
        {
            builder.UseSetting(key, value);
        }
    }
}

/// <summary>An API host with its own configuration, for tests that change settings.</summary>
public sealed class ConfiguredApiFactory(IReadOnlyDictionary<string, string?> settings) : ApiFactory
{
    protected override IReadOnlyDictionary<string, string?> Settings { get; } = settings;
}

[CollectionDefinition(Name)]
public sealed class ApiCollection : ICollectionFixture<ApiFactory>
{
    public const string Name = "api";
}
