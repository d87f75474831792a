namespace MultiTaskBert.Api.Contracts;

/// <summary>The body of <c>POST /admin/rollback</c>: the kept bundle version whose tasks to publish again as the newest.</summary>
public sealed record RollbackRequest(long Version)
{
    /// <summary>The highest version number accepted (far beyond any that is published).</summary>
    public const long MaxVersion = 999_999_999_999;
}
