using MultiTaskBert.Core.Batching;

namespace MultiTaskBert.Api.Hosting;

/// <summary>
/// Batching settings that used to sit in the <c>Inference</c> section. An old key still applies
/// while its <c>Batching</c> key is not set (the new key wins when both are); start-up logs one
/// warning per old key that is set, naming its new place. appsettings.json leaves these
/// <c>Batching</c> keys out on purpose: set there, they would win over an old key set in the environment.
/// </summary>
internal sealed partial class DeprecatedBatchingKeys(IConfiguration configuration, ILogger<DeprecatedBatchingKeys> logger) : IHostedService
{
    private const string OldSection = "Inference";

    /// <summary>The <see cref="BatchingOptions"/> properties that moved, under the same names.</summary>
    private static readonly string[] Moved = [nameof(BatchingOptions.ParallelHeads), nameof(BatchingOptions.BucketOverheadTokens)];

    /// <summary>Binds the old keys whose <c>Batching</c> key is not set onto <paramref name="options"/> (already bound from <c>Batching</c>).</summary>
    public static void Apply(BatchingOptions options, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configuration);
        Dictionary<string, string?> fallbacks = Moved
            .Where(name => configuration[OldKey(name)] is not null && configuration[NewKey(name)] is null)
            .ToDictionary(name => name, name => configuration[OldKey(name)]);
        if (fallbacks.Count > 0)
        {
            // The configuration binder converts (and rejects) the values exactly as for the Batching section.
            new ConfigurationBuilder().AddInMemoryCollection(fallbacks).Build().Bind(options);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        foreach (string name in Moved.Where(name => configuration[OldKey(name)] is not null))
        {
            if (configuration[NewKey(name)] is null)
            {
                LogMoved(logger, OldKey(name), NewKey(name));
            }
            else
            {
                LogIgnored(logger, OldKey(name), NewKey(name));
            }
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private static string OldKey(string name) => $"{OldSection}:{name}";

    private static string NewKey(string name) => $"{BatchingOptions.SectionName}:{name}";

    [LoggerMessage(Level = LogLevel.Warning, Message = "{OldKey} is deprecated and still applies; set {NewKey} instead (every batching setting sits in the Batching section)")]
    private static partial void LogMoved(ILogger logger, string oldKey, string newKey);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{OldKey} is deprecated and ignored because {NewKey} is set; remove {OldKey}")]
    private static partial void LogIgnored(ILogger logger, string oldKey, string newKey);
}
