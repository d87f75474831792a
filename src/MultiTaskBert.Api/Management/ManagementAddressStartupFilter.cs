using Microsoft.AspNetCore.Hosting.Server.Features;

namespace MultiTaskBert.Api.Management;

/// <summary>
/// Adds <c>http://*:{Management:Port}</c> to the addresses the server listens on. Runs as a startup
/// filter because the host has filled the address list from <c>urls</c> / <c>--urls</c> /
/// <c>HTTP_PORTS</c> by then and the server has not bound yet: the public addresses stay whatever
/// was configured. (Kestrel endpoints declared in code or <c>Kestrel:Endpoints</c> replace this list;
/// declare the management port among them then.)
/// </summary>
internal sealed class ManagementAddressStartupFilter(ManagementListener listener) : IStartupFilter
{
    // Kestrel's own address when none is configured; named here because adding one replaces that default.
    private const string KestrelDefaultAddress = "http://localhost:5000";

    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        if (listener.HasOwnPort && app.ServerFeatures.Get<IServerAddressesFeature>() is { Addresses.IsReadOnly: false } server)
        {
            if (server.Addresses.Count == 0)
            {
                server.Addresses.Add(KestrelDefaultAddress);
            }

            server.Addresses.Add(FormattableString.Invariant($"http://*:{listener.Port}"));
        }

        next(app);
    };
}
