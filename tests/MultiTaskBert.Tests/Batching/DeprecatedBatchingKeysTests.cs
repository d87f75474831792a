using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using MultiTaskBert.Api.Hosting;
using MultiTaskBert.Core.Batching;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Batching;

/// <summary>The batching keys that moved from <c>Inference</c> to <c>Batching</c> keep working, with a warning.</summary>
public sealed class DeprecatedBatchingKeysTests
{
    private static IConfiguration Configuration(params (string Key, string Value)[] settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value))).Build();

    private static BatchingOptions Bound(IConfiguration configuration)
    {
        var options = new BatchingOptions();
        configuration.GetSection(BatchingOptions.SectionName).Bind(options);
        DeprecatedBatchingKeys.Apply(options, configuration);
        return options;
    }

    [Fact]
    public void Old_keys_apply_when_the_batching_keys_are_not_set()
    {
        BatchingOptions options = Bound(Configuration(("Inference:ParallelHeads", "true"), ("Inference:BucketOverheadTokens", "7")));

        Assert.True(options.ParallelHeads);
        Assert.Equal(7, options.BucketOverheadTokens);
    }

    [Fact]
    public void The_batching_keys_win_over_the_old_ones()
    {
        BatchingOptions options = Bound(Configuration(
            ("Inference:ParallelHeads", "true"), ("Batching:ParallelHeads", "false"),
            ("Inference:BucketOverheadTokens", "7"), ("Batching:BucketOverheadTokens", "9")));

        Assert.False(options.ParallelHeads);
        Assert.Equal(9, options.BucketOverheadTokens);
    }

    [Fact]
    public void Without_old_keys_the_batching_section_and_its_defaults_stand()
    {
        BatchingOptions options = Bound(Configuration(("Batching:MaxBatchSize", "4"), ("Inference:IntraOpThreads", "2")));

        Assert.Equal(4, options.MaxBatchSize);
        Assert.False(options.ParallelHeads);
        Assert.Equal(64, options.BucketOverheadTokens);
    }

    [Fact]
    public void A_bad_old_value_is_refused_like_a_bad_batching_value()
    {
        Assert.Throws<InvalidOperationException>(() => Bound(Configuration(("Inference:ParallelHeads", "sometimes"))));
    }

    [Fact]
    public async Task Start_up_warns_once_per_old_key_naming_its_new_place()
    {
        var logger = new ListLogger<DeprecatedBatchingKeys>();
        var warning = new DeprecatedBatchingKeys(
            Configuration(("Inference:ParallelHeads", "true"), ("Inference:BucketOverheadTokens", "7"), ("Batching:BucketOverheadTokens", "9")), logger);

        await warning.StartAsync(CancellationToken.None);

        Assert.Equal(2, logger.Entries.Count);
        Assert.All(logger.Entries, e => Assert.Equal(LogLevel.Warning, e.Level));
        Assert.Contains(logger.Entries, e => e.Message.Contains("Inference:ParallelHeads is deprecated and still applies; set Batching:ParallelHeads", StringComparison.Ordinal));
        Assert.Contains(logger.Entries, e => e.Message.Contains("Inference:BucketOverheadTokens is deprecated and ignored because Batching:BucketOverheadTokens is set", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Start_up_says_nothing_without_old_keys()
    {
        var logger = new ListLogger<DeprecatedBatchingKeys>();

        await new DeprecatedBatchingKeys(Configuration(("Batching:ParallelHeads", "true")), logger).StartAsync(CancellationToken.None);

        Assert.Empty(logger.Entries);
    }
}
