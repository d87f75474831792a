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
