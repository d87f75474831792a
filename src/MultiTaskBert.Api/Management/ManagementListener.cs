using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;

namespace MultiTaskBert.Api.Management;

/// <summary>
/// Tells which listener a request came in on, by the connection's local port. Not by the Host header
/// (what <c>RequireHost("*:port")</c> matches): the client writes that header, so a request to the
/// public port could name the management port and get through.
/// </summary>
internal sealed class ManagementListener(IOptions<ManagementOptions> options)
{
    /// <summary>Whether the management endpoints have a port of their own (<c>Management:Port</c> set).</summary>
    public bool HasOwnPort => options.Value.HasOwnPort;

    public int Port => options.Value.Port;

    /// <summary>The listener(s) a request arrived on; both when there is no management port (one listener serves all).</summary>
    public Listeners ArrivedOn(HttpContext context) =>
        !HasOwnPort ? Listeners.Both
        : context.Connection.LocalPort == Port ? Listeners.Management
        : Listeners.Public;

    public bool Serves(HttpContext context, Listeners servedOn) => (ArrivedOn(context) & servedOn) != 0;
}
