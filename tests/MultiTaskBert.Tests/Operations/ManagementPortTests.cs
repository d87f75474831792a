using System.Net;
using System.Net.Http.Json;
using MultiTaskBert.Tests.Faults;

namespace MultiTaskBert.Tests.Operations;

/// <summary>One real service process (Kestrel on loopback) with <c>Management:Port</c> set: two listeners.</summary>
public sealed class ManagementPortService : IAsyncLifetime
{
    private readonly ServiceCluster _cluster = new();

    public int ManagementPort { get; } = ServiceCluster.FreePort();

    public ServiceCluster.Replica Replica { get; private set; } = null!;

    public Uri PublicAddress => Replica.BaseAddress;

    public Uri ManagementAddress => new($"http://127.0.0.1:{ManagementPort}");

    public async Task InitializeAsync() =>
        Replica = await _cluster.StartLoneReplicaAsync(new Dictionary<string, string>
        {
            ["Management__Port"] = ManagementPort.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Serilog__MinimumLevel__Default"] = "Error",
        });

    public Task DisposeAsync() => _cluster.DisposeAsync();
}

/// <summary>
/// Issue #19 item 7: with a management port, <c>/metrics</c> and Swagger answer only there, the API
/// only on the public port, and the health checks on both. Through real sockets: which port a
/// request came in on is what decides, and only a real listener has ports (TestServer has none).
/// </summary>
public sealed class ManagementPortTests(ManagementPortService service) : IClassFixture<ManagementPortService>
{
    public static readonly TheoryData<string> ManagementPaths = new() { "/metrics", "/swagger/v1/swagger.json", "/swagger/index.html", "/swagger" };

    public static readonly TheoryData<string> HealthPaths = new() { "/health/live", "/health/ready" };

    [Theory]
    [MemberData(nameof(ManagementPaths))]
    public async Task Metrics_and_swagger_answer_on_the_management_port_and_not_on_the_public_one(string path)
    {
        using var client = new HttpClient();

        HttpResponseMessage onManagement = await client.GetAsync(new Uri(service.ManagementAddress, path));
        HttpResponseMessage onPublic = await client.GetAsync(new Uri(service.PublicAddress, path));

        Assert.Equal(HttpStatusCode.OK, onManagement.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, onPublic.StatusCode);
    }

    [Fact]
    public async Task The_management_port_serves_the_prometheus_export()
    {
        using var client = new HttpClient { BaseAddress = service.PublicAddress };
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsJsonAsync("/classify", new { text = "fine" })).StatusCode);

        string metrics = await client.GetStringAsync(new Uri(service.ManagementAddress, "/metrics"));

        Assert.Contains("mtbert_requests", metrics);
        Assert.Contains("endpoint=\"/classify/\"", metrics);
    }

    [Theory]
    [MemberData(nameof(HealthPaths))]
    public async Task Health_answers_on_both_ports(string path)
    {
        using var client = new HttpClient();

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(service.PublicAddress, path))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(new Uri(service.ManagementAddress, path))).StatusCode);
    }

    [Fact]
    public async Task The_api_answers_on_the_public_port_and_not_on_the_management_one()
    {
        using HttpClient admin = service.Replica.AdminClient();

        foreach (Uri address in new[] { service.PublicAddress, service.ManagementAddress })
        {
            HttpStatusCode expected = address == service.PublicAddress ? HttpStatusCode.OK : HttpStatusCode.NotFound;
            Assert.Equal(expected, (await admin.PostAsJsonAsync(new Uri(address, "/classify"), new { text = "fine" })).StatusCode);
            Assert.Equal(expected, (await admin.PostAsJsonAsync(new Uri(address, "/classify/batch"), new { inputs = new[] { new { text = "fine" } } })).StatusCode);
            Assert.Equal(expected, (await admin.GetAsync(new Uri(address, "/tasks"))).StatusCode);
            Assert.Equal(expected, (await admin.PostAsync(new Uri(address, "/admin/reload"), null)).StatusCode);
        }
    }

    [Theory]
    [MemberData(nameof(ManagementPaths))]
    public async Task A_host_header_naming_the_management_port_does_not_open_it_on_the_public_port(string path)
    {
        // What RequireHost("*:port") would match: the Host header, which the client writes.
        using var client = new HttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, new Uri(service.PublicAddress, path));
        request.Headers.Host = $"127.0.0.1:{service.ManagementPort}";

        HttpResponseMessage response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
