using System.Text;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Bundles;

/// <summary>The one containment rule for manifest paths and the one SHA-256, shared by loader, registry and uploads.</summary>
public sealed class BundleFilesTests : IDisposable
{
    private readonly BundleCopy _bundle = new();

    [Fact]
    public void A_slash_separated_path_inside_the_bundle_resolves_to_the_file()
    {
        string path = BundleFiles.ResolveExistingFile(_bundle.Directory, TestBundle.SingleClassificationTask.Head.File, "f");

        Assert.Equal(_bundle.PathOf(TestBundle.SingleClassificationTask.Head.File), path);
        Assert.True(File.Exists(path));
    }

    [Theory]
    [InlineData("../outside.onnx", "leaves the bundle folder")]
    [InlineData("heads/../../outside.onnx", "leaves the bundle folder")]
    [InlineData("/etc/passwd", "relative '/'-separated path")]
    [InlineData("heads\\sst2.onnx", "relative '/'-separated path")]
    [InlineData("", "relative '/'-separated path")]
    [InlineData("heads/sst2.onnx\u0000", "control character")]
    public void A_path_outside_or_malformed_is_refused_naming_the_field(string relative, string problem)
    {
        BundleValidationException error = Assert.Throws<BundleValidationException>(() => BundleFiles.ResolveExistingFile(_bundle.Directory, relative, "tasks[0].head.file"));

        Assert.Equal((BundleLoader.ManifestFileName, "tasks[0].head.file"), (error.File, error.Field));
        Assert.Contains(problem, error.Message);
        Assert.DoesNotContain('\0', error.Message);
    }

    [Fact]
    public void A_missing_file_names_the_file_itself()
    {
        BundleValidationException error = Assert.Throws<BundleValidationException>(() => BundleFiles.ResolveExistingFile(_bundle.Directory, "heads/none.onnx", "x"));

        Assert.Equal(("heads/none.onnx", "x"), (error.File, error.Field));
        Assert.Contains("file not found", error.Message);
    }

    [Fact]
    public async Task File_and_stream_hashes_are_the_lower_case_sha256_the_manifest_records()
    {
        string relative = TestBundle.SingleClassificationTask.Head.File;
        string path = _bundle.PathOf(relative);

        string ofFile = await BundleFiles.Sha256Async(path);
        await using FileStream stream = File.OpenRead(path);
        string ofStream = await BundleFiles.Sha256Async(stream);

        Assert.Equal(_bundle.Sha256Of(relative), ofFile);
        Assert.Equal(ofFile, ofStream);
        Assert.Equal(ofFile.ToLowerInvariant(), ofFile);
        Assert.Equal(TestBundle.SingleClassificationTask.Head.Sha256, ofFile, ignoreCase: true);
    }

    [Fact]
    public async Task A_hash_mismatch_names_the_file_and_the_field()
    {
        string path = _bundle.PathOf("notes.txt");
        await File.WriteAllTextAsync(path, "abc", Encoding.ASCII);

        await BundleFiles.VerifySha256Async(path, "notes.txt", "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD", "x.sha256", CancellationToken.None);
        BundleValidationException error = await Assert.ThrowsAsync<BundleValidationException>(
            () => BundleFiles.VerifySha256Async(path, "notes.txt", new string('0', 64), "x.sha256", CancellationToken.None));

        Assert.Equal(("notes.txt", "x.sha256"), (error.File, error.Field));
        Assert.Contains("file has ba7816bf", error.Message);
    }

    public void Dispose() => _bundle.Dispose();
}
