using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Engine;

/// <summary>The holder of the snapshot in service: leases, the first load, swaps and retirement, on real snapshots of the fixture.</summary>
public sealed class SnapshotHolderTests : IDisposable
{
    private readonly SnapshotHolder _holder = new();
    private readonly OnnxSessionFactory _sessions = new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);

    private BundleSnapshot Snapshot() => BundleSnapshot.Create(TestBundle.Loaded, _sessions);

    private BundleSnapshot FirstInService()
    {
        BundleSnapshot first = Snapshot();
        _holder.Replace(expected: null, first);
        return first;
    }

    [Fact]
    public void Nothing_is_leased_before_the_first_snapshot()
    {
        Assert.Null(_holder.Current);
        Assert.Throws<EngineNotReadyException>(() => _holder.Lease());
    }

    [Fact]
    public void The_first_snapshot_goes_in_once()
    {
        BundleSnapshot first = Snapshot();
        _holder.Replace(expected: null, first);
        Assert.Same(first, _holder.Current);

        BundleSnapshot second = Snapshot();
        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => _holder.Replace(expected: null, second));

        Assert.Equal("A bundle is already loaded.", error.Message);
        Assert.Same(first, _holder.Current);
        Assert.True(second.IsDrained); // the refused snapshot was disposed
        Assert.False(first.IsDrained);
    }

    [Fact]
    public void A_swap_retires_the_old_snapshot_after_its_last_lease()
    {
        BundleSnapshot old = FirstInService();
        BundleSnapshot leased = _holder.Lease();
        Assert.Same(old, leased);

        BundleSnapshot next = Snapshot();
        _holder.Replace(old, next);

        Assert.Same(next, _holder.Current);
        Assert.False(old.IsDrained); // an in-flight request still holds it
        leased.ReleaseLease();
        Assert.True(old.IsDrained);
        Assert.False(next.IsDrained);

        BundleSnapshot again = _holder.Lease();
        Assert.Same(next, again);
        again.ReleaseLease();
    }

    [Fact]
    public void A_swap_from_a_stale_snapshot_changes_nothing()
    {
        BundleSnapshot first = FirstInService();
        BundleSnapshot second = Snapshot();
        _holder.Replace(first, second);

        BundleSnapshot third = Snapshot();
        InvalidOperationException error = Assert.Throws<InvalidOperationException>(() => _holder.Replace(first, third));

        Assert.Equal("The bundle in service changed during an admin change.", error.Message);
        Assert.Same(second, _holder.Current);
        Assert.True(third.IsDrained);
        Assert.False(second.IsDrained);
    }

    [Fact]
    public void Disposing_takes_the_snapshot_out_of_service()
    {
        BundleSnapshot snapshot = FirstInService();
        BundleSnapshot leased = _holder.Lease();

        _holder.Dispose();

        Assert.Null(_holder.Current);
        Assert.Throws<EngineNotReadyException>(() => _holder.Lease());
        Assert.False(snapshot.IsDrained);
        leased.ReleaseLease();
        Assert.True(snapshot.IsDrained);
    }

    public void Dispose()
    {
        _holder.Dispose();
        _sessions.Dispose();
    }
}
