using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>Configuration section <c>Shutdown</c>: how the service leaves a load balancer.</summary>
public sealed class ShutdownOptions
{
    public const string SectionName = "Shutdown";

    /// <summary>
    /// After a stop signal, readiness reports unhealthy for this long while the service keeps
    /// serving, so that load balancers stop sending new requests before the listener closes.
    /// </summary>
    [Range(0, 600_000)]
    public int DrainDelayMs { get; set; }

    /// <summary>How long in-flight requests may take to finish once the listener closed (host shutdown timeout).</summary>
    [Range(1, 3600)]
    public int TimeoutSeconds { get; set; } = 30;
}
