using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>
/// Configuration section <c>Management</c>: where the operator's endpoints (<c>/metrics</c>, Swagger)
/// are served.
/// </summary>
public sealed class ManagementOptions
{
    public const string SectionName = "Management";

    /// <summary>
    /// 0 (default): everything on the service's own address(es). Otherwise the service also listens on
    /// this port (all interfaces, plain HTTP), serves <c>/metrics</c> and Swagger only there, the API
    /// only on its own address(es), and the health checks on both.
    /// </summary>
    [Range(0, 65535)]
    public int Port { get; set; }

    public bool HasOwnPort => Port != 0;
}
