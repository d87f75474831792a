namespace MultiTaskBert.Api.Configuration;

/// <summary>
/// Configuration section <c>Auth</c>: optional keys for the public API (<c>/classify</c>,
/// <c>/v2/classify</c>, <c>/tasks</c>), for deployments without a gateway that checks callers.
/// Health, metrics and Swagger stay open; <c>/admin</c> has its own key (<c>Admin:ApiKey</c>).
/// </summary>
public sealed class AuthOptions
{
    public const string SectionName = "Auth";

    /// <summary>Keys a caller may send in <c>X-Api-Key</c>. Empty (the default): the public API is open.</summary>
    public IList<string> ApiKeys { get; } = [];

    public bool Enabled => ApiKeys.Any(k => !string.IsNullOrEmpty(k));
}

/// <summary>Configuration section <c>Cors</c>: browser front-ends allowed to call the service.</summary>
public sealed class CorsOptions
{
    public const string SectionName = "Cors";

    /// <summary>Origins (e.g. <c>https://app.example.com</c>) whose pages may call the API. Empty (the default): no CORS headers, preflights answer 405.</summary>
    public IList<string> AllowedOrigins { get; } = [];

    /// <summary>The non-empty origins (an unset <c>${VAR:-}</c> in a compose file gives an empty one).</summary>
    public IReadOnlyList<string> Origins => [.. AllowedOrigins.Where(o => !string.IsNullOrWhiteSpace(o))];
}
