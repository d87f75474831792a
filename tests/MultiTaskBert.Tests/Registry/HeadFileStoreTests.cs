using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Registry;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Registry;

/// <summary>Uploaded heads land in heads/ under a name of task, version and SHA-256 prefix, with no temporary file left.</summary>
public sealed class HeadFileStoreTests : IDisposable
{
    private readonly BundleCopy _bundle = new();

    [Fact]
    public async Task A_head_is_stored_under_its_task_version_and_hash()
    {
        byte[] content = await File.ReadAllBytesAsync(_bundle.PathOf(TestBundle.SingleClassificationTask.Head.File));
        string sha = _bundle.Sha256Of(TestBundle.SingleClassificationTask.Head.File);

        StoredHead stored = await HeadFileStore.StoreAsync(_bundle.Directory, "mytask", 3, new MemoryStream(content), CancellationToken.None);

        Assert.Equal($"heads/mytask-v3-{sha[..12]}.onnx", stored.RelativePath);
        Assert.Equal(sha, stored.Sha256);
        Assert.True(stored.Created);
        Assert.Equal(_bundle.PathOf(stored.RelativePath), stored.FullPath);
        Assert.Equal(content, await File.ReadAllBytesAsync(stored.FullPath));
        Assert.Empty(Directory.GetFiles(_bundle.PathOf(BundleTempFiles.HeadsFolder), "*.tmp"));
    }

    [Fact]
    public async Task The_same_content_again_keeps_the_file_there()
    {
        byte[] content = [1, 2, 3, 4];
        StoredHead first = await HeadFileStore.StoreAsync(_bundle.Directory, "mytask", 1, new MemoryStream(content), CancellationToken.None);

        StoredHead again = await HeadFileStore.StoreAsync(_bundle.Directory, "mytask", 1, new MemoryStream(content), CancellationToken.None);

        Assert.Equal(first.RelativePath, again.RelativePath);
        Assert.False(again.Created); // in use, perhaps: the caller must not delete it
        Assert.True(File.Exists(first.FullPath));
        Assert.Empty(Directory.GetFiles(_bundle.PathOf(BundleTempFiles.HeadsFolder), "*.tmp"));
    }

    [Fact]
    public async Task An_upload_spooled_into_heads_is_linked_into_place_not_written_again()
    {
        byte[] content = [5, 6, 7, 8];
        string spool = BundleTempFiles.NewUploadPath(_bundle.Directory);
        await using var spooled = new FileStream(spool, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 4096, FileOptions.DeleteOnClose);
        await spooled.WriteAsync(content);
        spooled.Position = 0;

        StoredHead stored = await HeadFileStore.StoreAsync(_bundle.Directory, "mytask", 1, spooled, CancellationToken.None);
        await spooled.DisposeAsync();

        Assert.True(stored.Created);
        Assert.False(File.Exists(spool)); // linked, and the spool name went with its stream: no second copy
        Assert.Equal(content, await File.ReadAllBytesAsync(stored.FullPath));
        Assert.Empty(Directory.GetFiles(_bundle.PathOf(BundleTempFiles.HeadsFolder), "*.tmp"));
    }

    [Fact]
    public async Task Of_many_uploads_racing_for_one_name_exactly_one_creates_it()
    {
        // Only the creator may delete the file when its change is refused; the others may be serving it.
        for (int round = 0; round < 20; round++)
        {
            byte[] content = [9, 9, (byte)round];
            StoredHead[] stored = await Task.WhenAll(Enumerable.Range(0, 16).Select(_ => Task.Run(() =>
                HeadFileStore.StoreAsync(_bundle.Directory, "mytask", 1, new MemoryStream(content), CancellationToken.None))));

            Assert.Single(stored, s => s.Created);
            Assert.Equal(content, await File.ReadAllBytesAsync(stored[0].FullPath));
        }

        Assert.Empty(Directory.GetFiles(_bundle.PathOf(BundleTempFiles.HeadsFolder), "*.tmp"));
    }

    public void Dispose() => _bundle.Dispose();
}
