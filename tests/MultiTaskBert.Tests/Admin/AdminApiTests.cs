using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Admin;

/// <summary>The hot task registry through the HTTP admin API: add, replace, remove, reload, refusals.</summary>
public sealed class AdminApiTests
{
    private const string Single = "sst2";

    [Fact]
    public async Task Admin_endpoints_are_off_without_a_configured_key()
    {
        using var host = new AdminHost(apiKey: null);

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/reload", null);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Admin_endpoints_refuse_a_missing_or_wrong_key()
    {
        using var host = new AdminHost();

        Assert.Equal(HttpStatusCode.Unauthorized, (await host.Client.PostAsync("/admin/reload", null)).StatusCode);
        using var wrong = new HttpRequestMessage(HttpMethod.Post, "/admin/reload");
        wrong.Headers.Add("X-Api-Key", AdminHost.Key + "x");
        Assert.Equal(HttpStatusCode.Unauthorized, (await host.Client.SendAsync(wrong)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await host.Admin.PostAsync("/admin/reload", null)).StatusCode);
    }

    [Fact]
    public async Task Replacing_a_head_serves_the_new_version_shares_the_rest_and_publishes_a_version()
    {
        using var host = new AdminHost();
        BundleSnapshot before = host.Engine.Current!;
        JsonObject entry = host.Entry(Single);
        entry["version"] = 2;
        entry["head"]!["file"] = host.CopyHead("heads/sst2.onnx", "heads/sst2-v2.onnx");
        entry["head"]!.AsObject().Remove("sha256"); // computed by the service

        HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/tasks", entry);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        JsonElement body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("replaced", body.GetProperty("action").GetString());
        Assert.Equal(1, body.GetProperty("previousVersion").GetInt32());
        // Another set of heads is another bundle version: answers report it, the manifest records it.
        string bumped = ManifestFile.BumpVersion(before.Bundle.Manifest.Version);
        Assert.NotEqual(before.Bundle.Manifest.Version, bumped);
        Assert.Equal($"{before.Bundle.Manifest.Name}@{bumped}", body.GetProperty("model").GetString());
        Assert.Equal($"{before.Bundle.Manifest.Name}@{bumped}", host.Engine.Current!.ModelId);
        Assert.Equal(2, await host.VersionOfAsync(Single));
        Assert.Equal(HttpStatusCode.OK, (await host.ClassifyAsync("great", Single)).StatusCode);

        BundleSnapshot after = host.Engine.Current!;
        Assert.True(after.SharesTrunkWith(before));
        Assert.All(after.Tasks.Where(t => t.Name != Single), t => Assert.True(after.SharesHeadWith(before, t.Name)));
        Assert.False(after.SharesHeadWith(before, Single));
        Assert.True(before.IsDrained);
        Assert.True(before.IsHeadDisposed(Single));
        Assert.True(File.Exists(host.Bundle.PathOf("heads/sst2.onnx"))); // the base version (manifest.json) still reads it
        Assert.False(after.IsTrunkDisposed);

        // Published as version 1 beside the untouched manifest.json.
        Assert.Equal(1, body.GetProperty("bundleVersion").GetInt64());
        Assert.Equal(before.Bundle.Manifest.Version, (string?)host.Bundle.ReadManifest()["version"]);
        JsonObject onDisk = host.Bundle.ReadNewestManifest();
        Assert.True(File.Exists(host.Bundle.PathOf("versions/000001.json")));
        Assert.Equal(bumped, (string?)onDisk["version"]);
        JsonNode sst2 = onDisk["tasks"]!.AsArray().First(t => (string?)t!["name"] == Single)!;
        Assert.Equal(2, (int)sst2["version"]!);
        Assert.Equal("heads/sst2-v2.onnx", (string?)sst2["head"]!["file"]);
        Assert.Equal(host.Bundle.Sha256Of("heads/sst2-v2.onnx"), (string?)sst2["head"]!["sha256"]);
        Assert.Empty(Directory.GetFiles(host.Bundle.Directory, "*.tmp", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task A_replacement_must_have_a_higher_version()
    {
        using var host = new AdminHost();

        HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/tasks", host.Entry(Single));

        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        Assert.Contains("version", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task An_uploaded_head_is_stored_in_the_bundle_and_served_as_a_new_task()
    {
        using var host = new AdminHost();
        JsonObject entry = host.Entry(Single);
        entry["name"] = "sst2-upload";
        entry["head"]!.AsObject().Remove("sha256");
        using var form = new MultipartFormDataContent
        {
            { new StringContent(entry.ToJsonString(), Encoding.UTF8, "application/json"), "manifest" },
            { new ByteArrayContent(await File.ReadAllBytesAsync(host.Bundle.PathOf("heads/sst2.onnx"))), "head", "sst2.onnx" },
        };

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", form);

        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        string file = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("headFile").GetString()!;
        Assert.StartsWith("heads/sst2-upload-v1-", file);
        Assert.True(File.Exists(host.Bundle.PathOf(file)));
        Assert.Equal(HttpStatusCode.OK, (await host.ClassifyAsync("great", "sst2-upload")).StatusCode);
        Assert.Equal(1, await host.VersionOfAsync("sst2-upload"));
    }

    public static TheoryData<string> BadHeads => new() { "not-onnx", "foreign-fingerprint", "wrong-width", "outside-root", "deeper-than-trunk", "sha-mismatch" };

    [Theory]
    [MemberData(nameof(BadHeads))]
    public async Task A_bad_head_is_refused_with_422_and_the_old_version_keeps_serving(string defect)
    {
        using var host = new AdminHost();
        string manifestBefore = await File.ReadAllTextAsync(host.Bundle.PathOf("manifest.json"));
        BundleSnapshot before = host.Engine.Current!;
        JsonObject entry = host.Entry(Single);
        entry["version"] = 2;
        entry["head"]!.AsObject().Remove("sha256");
        HttpContent content;
        switch (defect)
        {
            case "not-onnx":
                content = Upload(entry, "this is not an ONNX graph"u8.ToArray());
                break;
            case "foreign-fingerprint":
                entry["pretrainedFingerprint"] = new string('a', 64);
                content = JsonContent.Create(entry);
                break;
            case "wrong-width":
                entry["output"]!["labels"] = new JsonArray("negative", "neutral", "positive");
                content = JsonContent.Create(entry);
                break;
            case "outside-root":
                entry["head"]!["file"] = "../outside.onnx";
                content = JsonContent.Create(entry);
                break;
            case "deeper-than-trunk":
                entry["branchLayer"] = 3;
                content = JsonContent.Create(entry);
                break;
            default:
                entry["head"]!["sha256"] = new string('0', 64);
                content = JsonContent.Create(entry);
                break;
        }

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", content);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        JsonElement problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.False(string.IsNullOrEmpty(problem.GetProperty("detail").GetString()));
        Assert.Same(before, host.Engine.Current);
        Assert.Equal(1, await host.VersionOfAsync(Single));
        Assert.Equal(HttpStatusCode.OK, (await host.ClassifyAsync("great", Single)).StatusCode);
        Assert.Equal(manifestBefore, await File.ReadAllTextAsync(host.Bundle.PathOf("manifest.json")));
        Assert.Single(Directory.GetFiles(host.Bundle.PathOf("heads"), "sst2*"));
    }

    public static TheoryData<string> MisplacedHeads => new() { "branch-layer", "input-kind", "trunk-fingerprint" };

    [Theory]
    [MemberData(nameof(MisplacedHeads))]
    public async Task An_upload_that_disagrees_with_its_head_file_metadata_is_refused_with_422(string defect)
    {
        // sst2 branches at layer 1 of a trunk that outputs layers 1 and 2: an entry moving it to layer 2
        // passes every other check and would answer from the wrong hidden states.
        using var host = new AdminHost();
        string manifestBefore = await File.ReadAllTextAsync(host.Bundle.PathOf("manifest.json"));
        BundleSnapshot before = host.Engine.Current!;
        JsonObject entry = host.Entry(Single);
        Assert.Equal(1, (int)entry["branchLayer"]!);
        entry["name"] = "sst2-moved";
        entry["head"]!.AsObject().Remove("sha256");
        byte[] head = await File.ReadAllBytesAsync(host.Bundle.PathOf("heads/sst2.onnx"));
        string field;
        switch (defect)
        {
            case "branch-layer":
                OutOfDomainEntries.Strip(entry)["branchLayer"] = 2;
                field = "branchLayer";
                break;
            case "input-kind":
                entry["input"] = "pair";
                field = "input";
                break;
            default:
                string fingerprint = before.Bundle.Manifest.Trunk.Pretrained.Fingerprint;
                using (var copy = new BundleCopy())
                {
                    head = copy.PatchHead("heads/sst2.onnx", fingerprint, new string([.. fingerprint.Reverse()]));
                }

                field = "pretrainedFingerprint";
                break;
        }

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", Upload(entry, head));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        string detail = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("detail").GetString()!;
        Assert.Contains($"tasks[{before.Tasks.Count}].{field}", detail);
        Assert.Contains($"mtbert.{field}", detail);
        Assert.Same(before, host.Engine.Current);
        Assert.Null(await host.VersionOfAsync("sst2-moved"));
        Assert.Equal(manifestBefore, await File.ReadAllTextAsync(host.Bundle.PathOf("manifest.json")));
        Assert.Empty(Directory.GetFiles(host.Bundle.PathOf("heads"), "sst2-moved*"));
    }

    [Fact]
    public async Task Removing_a_task_stops_serving_it()
    {
        using var host = new AdminHost();
        string version = host.Engine.Current!.Bundle.Manifest.Version;

        HttpResponseMessage response = await host.Admin.DeleteAsync($"/admin/tasks/{Single}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.EndsWith($"@{ManifestFile.BumpVersion(version)}", JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("model").GetString());
        Assert.Equal(ManifestFile.BumpVersion(version), (string?)host.Bundle.ReadNewestManifest()["version"]);
        Assert.Null(await host.VersionOfAsync(Single));
        Assert.Equal(HttpStatusCode.BadRequest, (await host.ClassifyAsync("great", Single)).StatusCode);
        Assert.DoesNotContain(host.Bundle.ReadNewestManifest()["tasks"]!.AsArray(), t => (string?)t!["name"] == Single);
        Assert.Equal(HttpStatusCode.NotFound, (await host.Admin.DeleteAsync($"/admin/tasks/{Single}")).StatusCode);
        Assert.True(File.Exists(host.Bundle.PathOf("heads/sst2.onnx"))); // the base version still reads it
    }

    [Fact]
    public async Task A_collected_head_file_is_deleted_once_the_last_request_on_its_snapshot_ends()
    {
        // One version kept, no grace: a head file goes as soon as no kept version and no running request reads it.
        using var host = new AdminHost(settings: new Dictionary<string, string?> { ["Registry:KeepVersions"] = "1", ["Registry:CollectGrace"] = "00:00:00" });
        byte[] head = await File.ReadAllBytesAsync(host.Bundle.PathOf("heads/sst2.onnx"));
        string[] files = new string[5];
        BundleSnapshot? second = null;
        for (int version = 2; version <= 4; version++)
        {
            JsonObject entry = host.Entry(Single);
            entry["version"] = version;
            entry["head"]!.AsObject().Remove("sha256");
            using MultipartFormDataContent form = Upload(entry, head);
            HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", form);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            files[version] = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("headFile").GetString()!;
            if (version == 2)
            {
                second = host.Engine.Current!;
                Assert.True(second.TryAcquire()); // a request still running on version 2's snapshot
            }
        }

        Assert.True(File.Exists(host.Bundle.PathOf(files[2]))); // its request still runs
        Assert.False(File.Exists(host.Bundle.PathOf(files[3]))); // read by nothing any more
        Assert.Equal(["000003.json"], Directory.GetFiles(host.Bundle.PathOf("versions")).Select(Path.GetFileName));
        second!.ReleaseLease();
        Assert.False(File.Exists(host.Bundle.PathOf(files[2])));
        Assert.True(File.Exists(host.Bundle.PathOf(files[4])));
        Assert.True(File.Exists(host.Bundle.PathOf("heads/sst2.onnx"))); // the base version's files stay
    }

    [Fact]
    public async Task Reload_serves_the_edited_manifest_and_refuses_a_broken_one()
    {
        using var host = new AdminHost();
        BundleSnapshot before = host.Engine.Current!;
        host.Bundle.EditManifest(m =>
        {
            JsonArray tasks = m["tasks"]!.AsArray();
            tasks.Remove(tasks.First(t => (string?)t!["name"] == Single));
        });

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/reload", null);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        JsonElement body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal([Single], body.GetProperty("removed").EnumerateArray().Select(e => e.GetString()));
        Assert.Null(await host.VersionOfAsync(Single));
        Assert.True(host.Engine.Current!.SharesTrunkWith(before));

        BundleSnapshot serving = host.Engine.Current!;
        host.Bundle.EditManifest(m => m["tasks"]![0]!["branchLayer"] = 9);
        response = await host.Admin.PostAsync("/admin/reload", null);

        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.Contains("branchLayer", await response.Content.ReadAsStringAsync());
        Assert.Same(serving, host.Engine.Current);
    }

    private static MultipartFormDataContent Upload(JsonObject entry, byte[] head) => new()
    {
        { new StringContent(entry.ToJsonString(), Encoding.UTF8, "application/json"), "manifest" },
        { new ByteArrayContent(head), "head", "head.onnx" },
    };
}
