using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Admin;

/// <summary>An API host over its own copy of the fixture bundle, with the admin API on.</summary>
public sealed class AdminHost : IDisposable
{
    public const string Key = "test-admin-key";

    private readonly ConfiguredApiFactory _factory;

    /// <param name="apiKey">The admin key the host is configured with (null: admin off).</param>
    /// <param name="settings">More configuration for the host.</param>
    public AdminHost(string? apiKey = Key, IReadOnlyDictionary<string, string?>? settings = null)
    {
        Bundle = new BundleCopy();
        var all = new Dictionary<string, string?>(settings ?? new Dictionary<string, string?>())
        {
            ["Model:BundlePath"] = Bundle.Directory,
            ["Admin:ApiKey"] = apiKey,
        };
        _factory = new ConfiguredApiFactory(all);
        Client = _factory.CreateClient();
        Admin = _factory.CreateClient();
        Admin.DefaultRequestHeaders.Add("X-Api-Key", Key);
    }

    public BundleCopy Bundle { get; }

    public HttpClient Client { get; }

    /// <summary>A client that sends the admin key.</summary>
    public HttpClient Admin { get; }

    public IServiceProvider Services => _factory.Services;

    public MultiTaskEngine Engine => _factory.Services.GetRequiredService<MultiTaskEngine>();

    /// <summary>The fixture's manifest entry of a task, as JSON (to edit into a new version).</summary>
    public JsonObject Entry(string task) =>
        (JsonObject)Bundle.ReadManifest()["tasks"]!.AsArray().First(t => (string?)t!["name"] == task)!.DeepClone();

    /// <summary>Copies a head file of the bundle to a new name inside it.</summary>
    public string CopyHead(string from, string to)
    {
        File.Copy(Bundle.PathOf(from), Bundle.PathOf(to), overwrite: true);
        return to;
    }

    public async Task<JsonElement> TasksAsync() =>
        JsonDocument.Parse(await Client.GetStringAsync("/tasks")).RootElement.GetProperty("tasks");

    public async Task<int?> VersionOfAsync(string task)
    {
        foreach (JsonElement t in (await TasksAsync()).EnumerateArray())
        {
            if (t.GetProperty("name").GetString() == task)
            {
                return t.GetProperty("version").GetInt32();
            }
        }

        return null;
    }

    public Task<HttpResponseMessage> ClassifyAsync(string text, params string[] tasks) =>
        Client.PostAsJsonAsync("/classify", new { text, tasks });

    public void Dispose()
    {
        Client.Dispose();
        Admin.Dispose();
        _factory.Dispose();
        Bundle.Dispose();
    }
}
