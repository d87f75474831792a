using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Tests.Support;
using Xunit.Abstractions;

namespace MultiTaskBert.Tests.Faults;

/// <summary>
/// Issue #28 with real processes: service replicas on ONE bundle folder (two pods on a shared
/// volume). Concurrent changes through both are all published and both converge; a replica killed
/// mid-publish leaves no torn version; a replica started while changes are published catches up.
/// </summary>
[Collection(FaultCollection.Name)]
[Trait("Category", "Fault")]
public sealed class SharedBundleFaultTests(ITestOutputHelper output) : IAsyncLifetime
{
    /// <summary>Every version kept (the test reads them all back); the default poll interval.</summary>
    private static readonly Dictionary<string, string> Settings = new() { ["Registry__KeepVersions"] = "1000" };

    private static readonly TimeSpan Converge = TimeSpan.FromSeconds(10);
    private readonly ServiceCluster _cluster = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync() => _cluster.DisposeAsync();

    private async Task<ServiceCluster.Replica[]> StartAsync(int count)
    {
        ServiceCluster.Replica first = _cluster.StartSharingReplica(1, null, Settings);
        ServiceCluster.Replica[] all = [first, .. Enumerable.Range(2, count - 1).Select(n => _cluster.StartSharingReplica(n, first.BundleDirectory, Settings))];
        await Task.WhenAll(all.Select(r => r.WaitReadyAsync(TimeSpan.FromSeconds(90))));
        return all;
    }

    /// <summary>A new task reading the fixture's sst2 head (a file in the shared folder: the change is the manifest entry).</summary>
    private static JsonObject NewTask(string name)
    {
        JsonObject manifest = JsonNode.Parse(File.ReadAllText(Path.Combine(TestBundle.Directory, "manifest.json")))!.AsObject();
        JsonObject entry = (JsonObject)manifest["tasks"]!.AsArray().First(t => (string?)t!["name"] == "sst2")!.DeepClone();
        entry["name"] = name;
        entry["version"] = 1;
        return entry;
    }

    private static async Task<(long Served, long Newest)> VersionsAsync(HttpClient admin)
    {
        JsonElement root = JsonDocument.Parse(await admin.GetStringAsync("/admin/versions")).RootElement;
        return (root.GetProperty("served").GetInt64(), root.GetProperty("newest").GetInt64());
    }

    /// <summary>Waits until every replica serves <paramref name="version"/>; returns how long that took.</summary>
    private static async Task<TimeSpan> WaitServedAsync(IEnumerable<HttpClient> admins, long version, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            long[] served = await Task.WhenAll(admins.Select(async a => (await VersionsAsync(a)).Served));
            if (served.All(s => s == version))
            {
                return clock.Elapsed;
            }

            Assert.True(clock.Elapsed < timeout, $"replicas serve versions {string.Join(", ", served)}, not {version}, after {timeout.TotalSeconds} s");
            await Task.Delay(50);
        }
    }

    private static async Task<string[]> TaskNamesAsync(HttpClient client) =>
        [.. JsonDocument.Parse(await client.GetStringAsync("/tasks")).RootElement.GetProperty("tasks").EnumerateArray()
            .Select(t => t.GetProperty("name").GetString()!).Order(StringComparer.Ordinal)];

    private static async Task<string> ModelAsync(HttpClient client, string task)
    {
        using HttpResponseMessage response = await client.PostAsJsonAsync("/classify", new { text = "a fine film", tasks = new[] { task } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("model").GetString()!;
    }

    /// <summary>Every published version file is a whole manifest, numbered without gaps up to the newest.</summary>
    private static void AssertNoTornVersion(string bundle, long newest)
    {
        string[] files = Directory.GetFiles(Path.Combine(bundle, "versions"), "*.json");
        Assert.Equal(newest, files.Length);
        foreach (string file in files)
        {
            JsonObject manifest = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
            Assert.Equal(long.Parse(Path.GetFileNameWithoutExtension(file), System.Globalization.CultureInfo.InvariantCulture), (long)manifest["published"]!["number"]!);
        }
    }

    [Fact]
    public async Task Two_replicas_publishing_100_changes_at_once_lose_none_and_converge()
    {
        ServiceCluster.Replica[] replicas = await StartAsync(2);
        HttpClient[] admins = [.. replicas.Select(r => r.AdminClient())];
        const int PerReplica = 50;
        var clock = Stopwatch.StartNew();

        HttpStatusCode[][] statuses = await Task.WhenAll(admins.Select((admin, r) => Task.Run(async () =>
        {
            var codes = new HttpStatusCode[PerReplica];
            for (int i = 0; i < PerReplica; i++)
            {
                using HttpResponseMessage response = await admin.PostAsJsonAsync("/admin/tasks", NewTask($"r{r + 1}-{i}"));
                codes[i] = response.StatusCode;
            }

            return codes;
        })));
        TimeSpan publishing = clock.Elapsed;

        Assert.All(statuses.SelectMany(s => s), s => Assert.Equal(HttpStatusCode.OK, s));
        long newest = (await VersionsAsync(admins[0])).Newest;
        Assert.Equal(2 * PerReplica, newest);
        TimeSpan converged = await WaitServedAsync(admins, newest, Converge);
        string[] tasksA = await TaskNamesAsync(admins[0]);
        Assert.Equal(tasksA, await TaskNamesAsync(admins[1]));
        Assert.Equal(2 * PerReplica, tasksA.Count(t => t.StartsWith("r1-", StringComparison.Ordinal) || t.StartsWith("r2-", StringComparison.Ordinal)));
        Assert.Equal(await ModelAsync(admins[0], "r1-0"), await ModelAsync(admins[1], "r2-49"));
        AssertNoTornVersion(replicas[0].BundleDirectory, newest);

        // One more change through each replica: how long until the other serves it.
        TimeSpan[] propagation = new TimeSpan[2];
        for (int r = 0; r < 2; r++)
        {
            using HttpResponseMessage removed = await admins[r].DeleteAsync($"/admin/tasks/r{r + 1}-0");
            Assert.Equal(HttpStatusCode.OK, removed.StatusCode);
            propagation[r] = await WaitServedAsync([admins[1 - r]], newest + r + 1, Converge);
            Assert.DoesNotContain($"r{r + 1}-0", await TaskNamesAsync(admins[1 - r]));
        }

        output.WriteLine($"100 concurrent changes through 2 replicas on one folder: published in {publishing.TotalSeconds:F1} s, both served version {newest} "
            + $"{converged.TotalMilliseconds:F0} ms later; a removal reached the other replica in {propagation[0].TotalMilliseconds:F0} ms and {propagation[1].TotalMilliseconds:F0} ms "
            + $"(Registry:PollInterval 1 s, {Environment.ProcessorCount} cores)");
        Array.ForEach(admins, a => a.Dispose());
    }

    [Fact]
    public async Task A_replica_killed_mid_publish_leaves_no_torn_version_and_the_rest_converge()
    {
        ServiceCluster.Replica[] replicas = await StartAsync(2);
        using HttpClient victim = replicas[0].AdminClient();
        using HttpClient survivor = replicas[1].AdminClient();

        // Changes in flight on the victim when it is killed; the survivor keeps publishing.
        Task<HttpResponseMessage>[] inFlight = [.. Enumerable.Range(0, 20).Select(i => victim.PostAsJsonAsync("/admin/tasks", NewTask($"killed-{i}")))];
        await Task.Delay(700);
        replicas[0].Kill();
        foreach (Task<HttpResponseMessage> change in inFlight)
        {
            try
            {
                (await change).Dispose();
            }
            catch (HttpRequestException)
            {
                // cut off by the kill: that change may or may not have been published, never half
            }
        }

        for (int i = 0; i < 5; i++)
        {
            using HttpResponseMessage response = await survivor.PostAsJsonAsync("/admin/tasks", NewTask($"survivor-{i}"));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        long newest = (await VersionsAsync(survivor)).Newest;
        AssertNoTornVersion(replicas[1].BundleDirectory, newest);
        replicas[0].Start();
        await replicas[0].WaitReadyAsync(TimeSpan.FromSeconds(90));
        await WaitServedAsync([victim, survivor], newest, Converge);
        Assert.Equal(await TaskNamesAsync(victim), await TaskNamesAsync(survivor));
        output.WriteLine($"killed mid-publish: {newest} versions whole, the restarted replica serves version {newest} like the survivor");
    }

    [Fact]
    public async Task A_replica_started_while_changes_are_published_catches_up()
    {
        ServiceCluster.Replica[] replicas = await StartAsync(1);
        using HttpClient publisher = replicas[0].AdminClient();
        Task publishing = Task.Run(async () =>
        {
            for (int i = 0; i < 30; i++)
            {
                using HttpResponseMessage response = await publisher.PostAsJsonAsync("/admin/tasks", NewTask($"during-start-{i}"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        });

        ServiceCluster.Replica late = _cluster.StartSharingReplica(2, replicas[0].BundleDirectory, Settings);
        await late.WaitReadyAsync(TimeSpan.FromSeconds(90));
        await publishing;
        using HttpClient lateAdmin = late.AdminClient();
        long newest = (await VersionsAsync(publisher)).Newest;

        TimeSpan caughtUp = await WaitServedAsync([lateAdmin], newest, Converge);

        Assert.Equal(30, newest);
        Assert.Equal(await TaskNamesAsync(publisher), await TaskNamesAsync(lateAdmin));
        Assert.Equal(await ModelAsync(publisher, "during-start-29"), await ModelAsync(lateAdmin, "during-start-29"));
        output.WriteLine($"a replica started during 30 changes served the newest version {caughtUp.TotalMilliseconds:F0} ms after the last one");
    }
}
