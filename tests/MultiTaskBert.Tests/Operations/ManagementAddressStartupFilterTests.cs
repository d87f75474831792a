using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Management;

namespace MultiTaskBert.Tests.Operations;

/// <summary>The management address joins the configured addresses; it never replaces them.</summary>
public sealed class ManagementAddressStartupFilterTests
{
    [Theory]
    [InlineData(0, new[] { "http://127.0.0.1:5176" }, new[] { "http://127.0.0.1:5176" })]
    [InlineData(9090, new[] { "http://127.0.0.1:5176" }, new[] { "http://127.0.0.1:5176", "http://*:9090" })]
    [InlineData(9090, new[] { "http://*:8080", "https://*:8443" }, new[] { "http://*:8080", "https://*:8443", "http://*:9090" })]
    [InlineData(9090, new string[0], new[] { "http://localhost:5000", "http://*:9090" })] // nothing configured: Kestrel's default stays
    [InlineData(0, new string[0], new string[0])]
    public void The_server_listens_on_the_configured_addresses_and_the_management_port(int port, string[] configured, string[] expected)
    {
        var addresses = new ServerAddresses();
        foreach (string address in configured)
        {
            addresses.Addresses.Add(address);
        }

        var features = new FeatureCollection();
        features.Set<IServerAddressesFeature>(addresses);
        var app = new ApplicationBuilder(new ServiceCollection().BuildServiceProvider(), features);
        var filter = new ManagementAddressStartupFilter(new ManagementListener(Options.Create(new ManagementOptions { Port = port })));
        bool nextRan = false;

        filter.Configure(_ => nextRan = true)(app);

        Assert.Equal(expected, addresses.Addresses);
        Assert.True(nextRan);
    }

    private sealed class ServerAddresses : IServerAddressesFeature
    {
        public ICollection<string> Addresses { get; } = [];

        public bool PreferHostingUrls { get; set; }
    }
}
