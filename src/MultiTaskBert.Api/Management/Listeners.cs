namespace MultiTaskBert.Api.Management;

/// <summary>Which of the service's listeners an endpoint answers on, or a request came in on.</summary>
[Flags]
public enum Listeners
{
    /// <summary>The service's own address(es): the API.</summary>
    Public = 1,

    /// <summary><c>Management:Port</c>: metrics and API documentation for the operator.</summary>
    Management = 2,

    /// <summary>Health checks: load balancers probe the public listener, an orchestrator may probe either.</summary>
    Both = Public | Management,
}
