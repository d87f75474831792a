using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MultiTaskBert.Tests.Admin;

/// <summary>Issue #25 item 8: small leaks and loose input of the admin API, health, metrics and requests.</summary>
public sealed class LooseInputTests
{
    public static TheoryData<string, string> AdminRoutes => new()
    {
        { "GET", "/admin/tasks" }, { "POST", "/admin/tasks" }, { "PUT", "/admin/tasks" }, { "DELETE", "/admin/tasks/sst2" },
        { "GET", "/admin/reload" }, { "POST", "/admin/reload" },
        { "GET", "/admin/versions" }, { "POST", "/admin/rollback" },
    };

    [Theory]
    [MemberData(nameof(AdminRoutes))]
    public async Task With_admin_off_every_method_on_an_admin_path_is_a_404(string method, string path)
    {
        using var host = new AdminHost(apiKey: null);
        using var request = new HttpRequestMessage(new HttpMethod(method), path);
        request.Headers.Add("X-Api-Key", AdminHost.Key);

        HttpResponseMessage response = await host.Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task A_401_names_the_key_scheme()
    {
        using var host = new AdminHost();

        HttpResponseMessage response = await host.Client.PostAsync("/admin/reload", null);

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("ApiKey header=\"X-Api-Key\"", Assert.Single(response.Headers.WwwAuthenticate).ToString());
    }

    [Theory]
    [InlineData("/health/live")]
    [InlineData("/health/ready")]
    [InlineData("/metrics")]
    public async Task Health_and_metrics_answer_get_and_head_only(string path)
    {
        using var host = new AdminHost(apiKey: null);

        foreach (string method in (string[])["GET", "HEAD"])
        {
            using var read = new HttpRequestMessage(new HttpMethod(method), path);
            Assert.Equal(HttpStatusCode.OK, (await host.Client.SendAsync(read)).StatusCode);
        }

        foreach (string method in (string[])["POST", "DELETE", "PUT", "TRACE"])
        {
            using var write = new HttpRequestMessage(new HttpMethod(method), path);
            Assert.Equal(HttpStatusCode.MethodNotAllowed, (await host.Client.SendAsync(write)).StatusCode);
        }
    }

    [Theory]
    [InlineData(0L, "must be in 1..2147483646, not 0")]
    [InlineData(-1L, "must be in 1..2147483646, not -1")]
    [InlineData(2147483647L, "must be in 1..2147483646, not 2147483647")]
    public async Task A_task_version_is_1_to_int_max_minus_1(long version, string message)
    {
        using var host = new AdminHost();
        JsonObject entry = NewTask(host);
        entry["version"] = version;

        await AssertRefused(await host.Admin.PostAsJsonAsync("/admin/tasks", entry), ".version", message);
    }

    [Fact]
    public async Task A_description_has_at_most_1000_characters()
    {
        using var host = new AdminHost();
        JsonObject entry = NewTask(host);
        entry["description"] = new string('d', 1001);

        await AssertRefused(await host.Admin.PostAsJsonAsync("/admin/tasks", entry), ".description", "is 1001 characters long; at most 1000");

        entry["description"] = new string('d', 1000);
        Assert.Equal(HttpStatusCode.OK, (await host.Admin.PostAsJsonAsync("/admin/tasks", entry)).StatusCode);
    }

    [Theory]
    [InlineData("")]
    [InlineData("pos\u0000")]
    [InlineData("\u001b[31mpos")]
    [InlineData("\u202eevitisop")]
    [InlineData("NEGATIVE")]
    public async Task Labels_are_non_empty_printable_and_unique_after_case_folding(string label)
    {
        using var host = new AdminHost();
        JsonObject entry = NewTask(host);
        entry["output"]!["labels"] = new JsonArray("negative", label);

        await AssertRefused(await host.Admin.PostAsJsonAsync("/admin/tasks", entry), ".output.labels", "entry 1");
    }

    [Fact]
    public async Task A_label_of_500k_characters_is_refused()
    {
        using var host = new AdminHost();
        JsonObject entry = NewTask(host);
        entry["output"]!["labels"] = new JsonArray("negative", new string('p', 500_000));

        await AssertRefused(await host.Admin.PostAsJsonAsync("/admin/tasks", entry), ".output.labels", "must be 1-200 characters");
    }

    [Fact]
    public async Task Fallback_thresholds_must_be_json_numbers()
    {
        using var host = new AdminHost(apiKey: null);
        using var body = new StringContent("""{"text":"great","fallbackThresholds":{"sst2":"0.5"}}""", Encoding.UTF8, "application/json");

        HttpResponseMessage response = await host.Client.PostAsync("/classify", body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("fallbackThresholds", await response.Content.ReadAsStringAsync());
    }

    private static JsonObject NewTask(AdminHost host)
    {
        JsonObject entry = host.Entry("sst2");
        entry["name"] = "another";
        return entry;
    }

    private static async Task AssertRefused(HttpResponseMessage response, string field, string message)
    {
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.UnprocessableEntity, $"{(int)response.StatusCode}: {text}");
        string detail = JsonDocument.Parse(text).RootElement.GetProperty("detail").GetString()!;
        Assert.True(detail.Contains(field, StringComparison.Ordinal) && detail.Contains(message, StringComparison.Ordinal), detail);
    }
}
