using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Tests.Faults;

namespace MultiTaskBert.Tests.Admin;

/// <summary>
/// The reproducers of issue #19 against the admin API: malformed uploads are 4xx problems (were
/// 500s), heads whose weights live in another file are refused (the SHA-256 covered only the
/// uploaded file), names are whole-string ASCII, 422s do not reveal server paths.
/// </summary>
public sealed class HostileAdminTests
{
    private const string Single = "sst2";

    public static TheoryData<string> ExternalDataHeads => ["ext-sibling.onnx", "ext-parent.onnx", "ext-absolute.onnx"];

    [Fact]
    public async Task Multipart_without_a_boundary_is_a_400()
    {
        using var host = new AdminHost();
        using var content = new StringContent("{}");
        content.Headers.ContentType = new MediaTypeHeaderValue("multipart/form-data");

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", content);

        await AssertProblem(response, HttpStatusCode.BadRequest, "Content-Type", "boundary");
    }

    [Fact]
    public async Task A_truncated_multipart_body_is_a_400()
    {
        using var host = new AdminHost();
        using var content = new StringContent("--x\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{}");
        content.Headers.ContentType = MediaTypeHeaderValue.Parse("multipart/form-data; boundary=x");

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", content);

        await AssertProblem(response, HttpStatusCode.BadRequest, "manifest", "");
        Assert.Empty(Directory.GetFiles(host.Bundle.PathOf("heads"), "*.tmp"));
    }

    [Fact]
    public async Task A_nul_in_a_head_path_is_a_422_naming_the_field()
    {
        using var host = new AdminHost();
        JsonObject entry = host.Entry(Single);
        entry["name"] = "nul";
        entry["head"]!["file"] = "heads/sst2.onnx\u0000";
        entry["head"]!.AsObject().Remove("sha256");

        HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/tasks", entry);

        await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "", "control character");
    }

    [Theory]
    [InlineData("nl\n")]
    [InlineData("sst2\n")]
    [InlineData("sst\u04302")] // Cyrillic a
    [InlineData("\u212a")] // Kelvin sign
    [InlineData("SST2")]
    public async Task Names_must_be_whole_string_ascii(string name)
    {
        using var host = new AdminHost();
        JsonObject entry = host.Entry(Single);
        entry["name"] = name;
        entry["head"]!.AsObject().Remove("sha256");

        HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/tasks", entry);

        await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "", "does not match");
        Assert.Null(await host.VersionOfAsync(name));
        Assert.DoesNotContain(name, host.Bundle.ReadManifest()["tasks"]!.AsArray().Select(t => (string?)t!["name"]));
    }

    [Theory]
    [MemberData(nameof(ExternalDataHeads))]
    public async Task A_head_with_external_data_is_refused_when_uploaded(string tampered)
    {
        using var host = new AdminHost();
        File.WriteAllBytes(Path.Combine(host.Bundle.Directory, "outside.bin"), new byte[64]);
        JsonObject entry = host.Entry(Single);
        entry["version"] = 2;
        entry["head"]!.AsObject().Remove("sha256");
        using var form = new MultipartFormDataContent
        {
            { new StringContent(entry.ToJsonString(), Encoding.UTF8, "application/json"), "manifest" },
            { new ByteArrayContent(await File.ReadAllBytesAsync(ServiceCluster.RepositoryFile("tests/fixtures/hostile/" + tampered))), "head", "head.onnx" },
        };

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", form);

        await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "", "external data");
        Assert.Equal(1, await host.VersionOfAsync(Single));
        Assert.Empty(Directory.GetFiles(host.Bundle.PathOf("heads"), "sst2-v2-*"));
        Assert.Empty(Directory.GetFiles(host.Bundle.PathOf("heads"), "*.tmp"));
    }

    [Theory]
    [MemberData(nameof(ExternalDataHeads))]
    public async Task A_head_with_external_data_is_refused_as_a_new_task_in_the_bundle(string tampered)
    {
        using var host = new AdminHost();
        File.Copy(ServiceCluster.RepositoryFile("tests/fixtures/hostile/" + tampered), host.Bundle.PathOf("heads/" + tampered));
        JsonObject entry = host.Entry(Single);
        entry["name"] = "tampered";
        entry["head"]!["file"] = "heads/" + tampered;
        entry["head"]!.AsObject().Remove("sha256");

        HttpResponseMessage response = await host.Admin.PostAsJsonAsync("/admin/tasks", entry);

        await AssertProblem(response, HttpStatusCode.UnprocessableEntity, "", "external data");
        Assert.Null(await host.VersionOfAsync("tampered"));
    }

    [Fact]
    public async Task A_bundle_whose_head_has_external_data_does_not_load()
    {
        using var bundle = new Support.BundleCopy();
        File.Copy(ServiceCluster.RepositoryFile("tests/fixtures/hostile/ext-sibling.onnx"), bundle.PathOf("heads/sst2.onnx"), overwrite: true);
        bundle.EditManifest(m => m["tasks"]!.AsArray().First(t => (string?)t!["name"] == Single)!["head"]!["sha256"] = bundle.Sha256Of("heads/sst2.onnx"));

        BundleValidationException error = await Assert.ThrowsAsync<BundleValidationException>(() => BundleLoader.LoadAsync(bundle.Directory));

        Assert.Equal("heads/sst2.onnx", error.File);
        Assert.EndsWith(".head.file", error.Field);
        Assert.Contains("reads its data from 'sst2.onnx'", error.Message);
    }

    [Fact]
    public async Task A_refused_head_does_not_reveal_the_bundle_path()
    {
        using var host = new AdminHost();
        JsonObject entry = host.Entry(Single);
        entry["version"] = 2;
        entry["head"]!.AsObject().Remove("sha256");
        using var form = new MultipartFormDataContent
        {
            { new StringContent(entry.ToJsonString(), Encoding.UTF8, "application/json"), "manifest" },
            { new ByteArrayContent((await File.ReadAllBytesAsync(host.Bundle.PathOf("heads/sst2.onnx")))[..4000]), "head", "head.onnx" },
        };

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", form);

        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.UnprocessableEntity, response.StatusCode);
        Assert.DoesNotContain(host.Bundle.Directory, text);
        Assert.DoesNotContain(Path.GetTempPath(), text);
    }

    [Fact]
    public async Task Duplicate_keys_in_an_admin_entry_are_a_400()
    {
        using var host = new AdminHost();
        using var content = new StringContent("{\"name\":\"a\",\"name\":\"b\"}", Encoding.UTF8, "application/json");

        HttpResponseMessage response = await host.Admin.PostAsync("/admin/tasks", content);

        await AssertProblem(response, HttpStatusCode.BadRequest, "(body)", "");
    }

    [Fact]
    public void Leftover_temp_files_of_a_killed_process_are_removed_at_start_up()
    {
        using var bundle = new Support.BundleCopy();
        string upload = bundle.PathOf($"heads/.upload-{Guid.NewGuid():N}.tmp");
        string manifest = bundle.PathOf($".manifest.json.{Guid.NewGuid():N}.tmp");
        Directory.CreateDirectory(bundle.PathOf("versions"));
        string publish = bundle.PathOf($"versions/.publish-{Guid.NewGuid():N}.tmp");
        // Another replica on the same (shared) folder is uploading and publishing right now: its files are young.
        string liveUpload = bundle.PathOf($"heads/.upload-{Guid.NewGuid():N}.tmp");
        string livePublish = bundle.PathOf($"versions/.publish-{Guid.NewGuid():N}.tmp");
        foreach (string file in (string[])[upload, manifest, publish, liveUpload, livePublish])
        {
            File.WriteAllText(file, "partial");
        }

        foreach (string file in (string[])[upload, manifest, publish])
        {
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddHours(-2));
        }

        using var factory = new Support.ConfiguredApiFactory(new Dictionary<string, string?> { ["Model:BundlePath"] = bundle.Directory });
        using HttpClient client = factory.CreateClient();

        Assert.False(File.Exists(upload));
        Assert.False(File.Exists(manifest));
        Assert.False(File.Exists(publish));
        Assert.True(File.Exists(liveUpload));
        Assert.True(File.Exists(livePublish));
        Assert.True(File.Exists(bundle.PathOf("heads/sst2.onnx")));
    }

    private static async Task AssertProblem(HttpResponseMessage response, HttpStatusCode status, string field, string message)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        string detail = JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString()!;
        Assert.StartsWith(field, detail);
        Assert.Contains(message, detail);
    }
}
