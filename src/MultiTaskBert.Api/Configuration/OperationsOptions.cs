using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Api.Configuration;

/// <summary>Configuration section <c>Admin</c>: the task-registry endpoints under <c>/admin</c>.</summary>
public sealed class AdminOptions
{
    public const string SectionName = "Admin";

    /// <summary>Key callers send in <c>X-Api-Key</c>. Absent or empty: the admin endpoints answer 404 (off).</summary>
    public string? ApiKey { get; set; }

    /// <summary>Largest uploaded head ONNX file (multipart) accepted by <c>POST /admin/tasks</c>.</summary>
    [Range(1, long.MaxValue)]
    public long MaxUploadBytes { get; set; } = 512L * 1024 * 1024;

    public bool Enabled => !string.IsNullOrEmpty(ApiKey);
}

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

/// <summary>Configuration section <c>Logging</c> (the part this service reads; Serilog has its own section).</summary>
public sealed class LogFormatOptions
{
    public const string SectionName = "Logging";

    /// <summary><c>text</c> (human-readable console lines) or <c>json</c> (Serilog compact JSON, one event per line).</summary>
    [RegularExpression("^(text|json)$")]
    public string Format { get; set; } = "text";
}
