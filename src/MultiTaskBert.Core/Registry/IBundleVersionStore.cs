using System.Text.Json.Nodes;

namespace MultiTaskBert.Core.Registry;

/// <summary>
/// Where the published versions of one bundle live, shared by every replica. Versions are
/// numbered 1, 2, 3, … on top of the base (number 0, the bundle's manifest.json, never written);
/// a published version is immutable. <see cref="TryPublishAsync"/> is the one compare-and-swap
/// every change goes through: it creates version n only if nobody did, so two replicas that both
/// built on n − 1 cannot both win. A folder (<see cref="FolderVersionStore"/>) does it with an
/// exclusive hard link; an object store would use a conditional write (S3 <c>If-None-Match: *</c>).
/// </summary>
public interface IBundleVersionStore
{
    /// <summary>How errors name version <paramref name="number"/> (e.g. <c>versions/000042.json</c>; 0: <c>manifest.json</c>).</summary>
    string NameOf(long number);

    /// <summary>The highest published number, at least <paramref name="atLeast"/> (numbers only grow, so a caller passes the last it saw).</summary>
    Task<long> FindNewestAsync(long atLeast, CancellationToken cancellationToken);

    /// <summary>Version <paramref name="number"/>, or null when it is not (or no longer) there.</summary>
    Task<PublishedVersion?> ReadAsync(long number, CancellationToken cancellationToken);

    /// <summary>
    /// Publishes <paramref name="manifest"/> as version <paramref name="number"/> if no version of
    /// that number exists (atomically: readers see all of it or nothing); false when one does.
    /// </summary>
    Task<bool> TryPublishAsync(long number, JsonObject manifest, CancellationToken cancellationToken);

    /// <summary>The numbers of the published versions still stored, ascending (without the base).</summary>
    Task<IReadOnlyList<long>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Deletes version <paramref name="number"/> (garbage collection; never the base).</summary>
    Task DeleteAsync(long number, CancellationToken cancellationToken);
}
