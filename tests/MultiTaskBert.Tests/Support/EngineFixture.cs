using Microsoft.Extensions.Logging.Abstractions;
using MultiTaskBert.Core.Engine;
using MultiTaskBert.Core.Inference;

namespace MultiTaskBert.Tests.Support;

/// <summary>One engine over the fixture bundle on CPU, shared by a test class.</summary>
public sealed class EngineFixture : IAsyncLifetime, IDisposable
{
    private readonly OnnxSessionFactory _sessions = new(new InferenceOptions { Device = InferenceDevice.Cpu }, NullLogger<OnnxSessionFactory>.Instance);

    public EngineFixture() => Engine = new MultiTaskEngine(_sessions, NullLogger<MultiTaskEngine>.Instance);

    public MultiTaskEngine Engine { get; }

    public Task InitializeAsync() => Engine.LoadAsync(TestBundle.Directory);

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        Engine.Dispose();
        _sessions.Dispose();
    }
}
