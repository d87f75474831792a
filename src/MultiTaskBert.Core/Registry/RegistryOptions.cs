using System.ComponentModel.DataAnnotations;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// Configuration section <c>Registry</c>: how a replica follows the bundle versions that every
/// replica publishes into the shared bundle folder, and how many of them are kept.
/// </summary>
public sealed class RegistryOptions
{
    public const string SectionName = "Registry";

    /// <summary>How often a replica looks for a newer published version (a change through another replica is served here within about this).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Published versions kept (the newest ones; rollback reaches these). Older version files, and head files only they read, are deleted.</summary>
    [Range(1, 100_000)]
    public int KeepVersions { get; set; } = 20;

    /// <summary>
    /// Head files stored or reused more recently than this are never collected: another replica may
    /// be about to publish a version that reads them (replicas' clocks must agree within it).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "7.00:00:00")]
    public TimeSpan CollectGrace { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>
    /// How often one admin change is re-applied on a newer version after another replica published
    /// first; past that it is answered 409 (a client may send it again).
    /// </summary>
    [Range(1, 1000)]
    public int PublishAttempts { get; set; } = 50;
}
