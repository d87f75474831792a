using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Tests.Admin;

/// <summary>
/// Issue #28 through the API of one host: a version another replica publishes into the shared
/// folder is served within the poll interval and visible in /metrics, readiness and
/// <c>GET /admin/versions</c>; a version that fails validation is reported and not served; rollback.
/// </summary>
public sealed class VersionsApiTests
{
    private static readonly Dictionary<string, string?> FastPoll = new() { ["Registry:PollInterval"] = "00:00:00.100" };

    /// <summary>What another replica does: publishes the next version into the shared folder.</summary>
    private static async Task PublishAsOtherReplicaAsync(AdminHost host, long number, Action<JsonObject> edit)
    {
        JsonObject manifest = host.Bundle.ReadNewestManifest();
        edit(manifest);
        manifest["version"] = $"{manifest["version"]}-other{number}";
        Assert.True(await new FolderVersionStore(host.Bundle.Directory).TryPublishAsync(number, manifest, CancellationToken.None));
    }

    private static async Task<string> WaitForReadyAsync(AdminHost host, string expected)
    {
        for (int i = 0; i < 200; i++)
        {
            string ready = await host.Client.GetStringAsync("/health/ready");
            if (ready.Contains(expected, StringComparison.Ordinal))
            {
                return ready;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"readiness never said '{expected}': {await host.Client.GetStringAsync("/health/ready")}");
    }

    [Fact]
    public async Task A_version_published_by_another_replica_is_served_and_shows_in_metrics_readiness_and_history()
    {
        using var host = new AdminHost(settings: FastPoll);
        await PublishAsOtherReplicaAsync(host, 1, m => m["tasks"]!.AsArray().Remove(m["tasks"]!.AsArray().First(t => (string?)t!["name"] == "sst2")));

        string ready = await WaitForReadyAsync(host, "bundle version 1 ");
        string metrics = await host.Client.GetStringAsync("/metrics");
        JsonElement history = JsonDocument.Parse(await host.Admin.GetStringAsync("/admin/versions")).RootElement;

        Assert.StartsWith("Healthy: bundle version 1 (", ready);
        Assert.Null(await host.VersionOfAsync("sst2"));
        string model = host.Engine.Current!.ModelId;
        Assert.EndsWith("-other1", model);
        Assert.Contains($"mtbert_bundle_version_served{{model=\"{model}\"}} 1", metrics);
        Assert.Contains("mtbert_bundle_versions_behind 0", metrics);
        Assert.Equal(1, history.GetProperty("served").GetInt64());
        Assert.Equal([1L, 0L], history.GetProperty("versions").EnumerateArray().Select(v => v.GetProperty("number").GetInt64()));
        Assert.Equal(model, history.GetProperty("versions")[0].GetProperty("model").GetString());
    }

    [Fact]
    public async Task A_version_that_fails_validation_is_reported_not_served_and_a_rollback_recovers()
    {
        using var host = new AdminHost(settings: FastPoll);
        await PublishAsOtherReplicaAsync(host, 1, m => m["tasks"]![0]!["branchLayer"] = 9);

        string ready = await WaitForReadyAsync(host, "refused");
        string metrics = await host.Client.GetStringAsync("/metrics");
        HttpResponseMessage edit = await host.Admin.DeleteAsync("/admin/tasks/sst2");

        Assert.StartsWith("Degraded: ", ready);
        Assert.Contains("bundle version 0 (", ready);
        Assert.Contains("1 behind; version 1 refused: versions/000001.json: tasks[0].branchLayer", ready);
        Assert.Contains("mtbert_bundle_versions_refused 1", metrics);
        Assert.Contains("mtbert_bundle_versions_behind 1", metrics);
        Assert.Equal(HttpStatusCode.Conflict, edit.StatusCode);
        Assert.Contains("POST /admin/rollback", await edit.Content.ReadAsStringAsync());
        Assert.Equal(1, await host.VersionOfAsync("sst2")); // still served from version 0

        HttpResponseMessage rollback = await host.Admin.PostAsJsonAsync("/admin/rollback", new { version = 0 });

        Assert.Equal(HttpStatusCode.OK, rollback.StatusCode);
        JsonElement body = JsonDocument.Parse(await rollback.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(2, body.GetProperty("version").GetInt64());
        Assert.Equal(0, body.GetProperty("rolledBackTo").GetInt64());
        Assert.Equal(host.Engine.Current!.ModelId, body.GetProperty("model").GetString());
        Assert.StartsWith("Healthy: bundle version 2 ", await host.Client.GetStringAsync("/health/ready"));
    }

    [Fact]
    public async Task Reloading_an_unchanged_manifest_publishes_nothing()
    {
        using var host = new AdminHost();
        string model = host.Engine.Current!.ModelId;

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/reload", null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        JsonElement body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(model, body.GetProperty("model").GetString());
        Assert.Empty(body.GetProperty("added").EnumerateArray());
        Assert.Empty(body.GetProperty("replaced").EnumerateArray());
        Assert.Equal(model, host.Engine.Current!.ModelId);
        Assert.False(Directory.Exists(host.Bundle.PathOf("versions")));
    }

    public static TheoryData<string, string, HttpStatusCode, string> BadRollbacks => new()
    {
        { "text/plain", "0", HttpStatusCode.UnsupportedMediaType, "Content-Type" },
        { "application/json", "{\"version\":", HttpStatusCode.BadRequest, "(body)" },
        { "application/json", "{}", HttpStatusCode.BadRequest, "version" },
        { "application/json", "{\"version\":\"0\"}", HttpStatusCode.BadRequest, "version" },
        { "application/json", "{\"version\":-1}", HttpStatusCode.BadRequest, "version" },
        { "application/json", "{\"version\":1.5}", HttpStatusCode.BadRequest, "version" },
        { "application/json", "{\"version\":1e30}", HttpStatusCode.BadRequest, "version" },
        { "application/json", "{\"version\":0,\"version\":1}", HttpStatusCode.BadRequest, "(body)" },
        { "application/json", "{\"version\":99}", HttpStatusCode.NotFound, "version 99 is not kept" },
    };

    [Theory]
    [MemberData(nameof(BadRollbacks))]
    public async Task A_bad_rollback_request_is_a_4xx_problem_naming_the_field(string contentType, string body, HttpStatusCode status, string names)
    {
        using var host = new AdminHost();
        string before = host.Engine.Current!.ModelId;

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/rollback", new StringContent(body, Encoding.UTF8, contentType));

        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(names, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString());
        Assert.Equal(before, host.Engine.Current!.ModelId);
    }

    [Fact]
    public async Task A_rollback_to_a_version_that_no_longer_validates_is_422_and_nothing_is_published()
    {
        using var host = new AdminHost();
        Assert.Equal(HttpStatusCode.OK, (await host.Admin.DeleteAsync("/admin/tasks/sst2")).StatusCode);
        File.Delete(host.Bundle.PathOf("heads/sst2.onnx")); // version 0 reads it

        HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/rollback", new { version = 0 });

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("heads/sst2.onnx", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, JsonDocument.Parse(await host.Admin.GetStringAsync("/admin/versions")).RootElement.GetProperty("newest").GetInt64());
    }
}
