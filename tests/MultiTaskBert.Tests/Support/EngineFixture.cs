using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Tests.Support;

/// <summary>One engine over the fixture bundle on CPU, shared by a test class.</summary>
public sealed class EngineFixture : IAsyncLifetime, IDisposable
{
    private readonly OnnxSessionFactory _sessions = new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);

    public EngineFixture() => Serving = new ServingParts(_sessions);

    /// <summary>The engine, its snapshot holder and the registry that loaded the bundle.</summary>
    public ServingParts Serving { get; }

    public MultiTaskEngine Engine => Serving.Engine;

    public Task InitializeAsync() => Serving.Registry.LoadAsync(TestBundle.Directory);

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        Serving.Dispose();
        _sessions.Dispose();
    }
}
