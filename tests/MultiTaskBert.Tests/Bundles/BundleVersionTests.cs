using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Tests.Bundles;

/// <summary>An admin change of the heads bumps the bundle version like the toolkit's `bundle add/replace/remove`.</summary>
public sealed class BundleVersionTests
{
    [Theory]
    [InlineData("1.4.1", "1.4.2")]
    [InlineData("1.0.9", "1.0.10")]
    [InlineData("3", "4")]
    [InlineData("2.0.0-rc1", "2.0.0-rc2")]
    [InlineData("1.4.1+local", "1.4.2+local")]
    [InlineData("dev", "dev.1")]
    public void The_last_number_goes_up_by_one(string version, string bumped) =>
        Assert.Equal(bumped, ManifestFile.BumpVersion(version));
}
