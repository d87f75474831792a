using System.Text.Json;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core.HeadKinds;

namespace MultiTaskBert.Tests.Api;

/// <summary>Issue #25: a 200 answer is serialized whole before its first byte, so a value JSON cannot carry fails before the response starts.</summary>
public sealed class CompleteJsonTests
{
    [Fact]
    public async Task An_answer_with_a_nan_fails_before_any_byte_is_written()
    {
        DefaultHttpContext context = NewContext();
        var answer = new CompleteJson<ClassifyResponse>(new ClassifyResponse("m", new Dictionary<string, TaskResult> { ["r"] = new RegressionResult(double.NaN) }));

        await Assert.ThrowsAsync<ArgumentException>(() => answer.ExecuteAsync(context));

        Assert.Equal(0, context.Response.Body.Length);
        Assert.False(context.Response.HasStarted);
    }

    [Fact]
    public async Task An_answer_is_written_whole_with_its_length()
    {
        DefaultHttpContext context = NewContext();
        var answer = new CompleteJson<ClassifyResponse>(new ClassifyResponse("m", new Dictionary<string, TaskResult>
        {
            ["r"] = new RegressionResult(0.5),
            ["bad"] = new TaskErrorResult(new TaskError("The head's output is not finite.", "details")),
        }));

        await answer.ExecuteAsync(context);

        byte[] body = ((MemoryStream)context.Response.Body).ToArray();
        Assert.Equal(body.Length, context.Response.ContentLength);
        Assert.Equal("""{"model":"m","results":{"r":{"value":0.5},"bad":{"error":{"title":"The head's output is not finite.","detail":"details"}}}}""",
            System.Text.Encoding.UTF8.GetString(body));
    }

    private static DefaultHttpContext NewContext()
    {
        ServiceProvider services = new ServiceCollection()
            .ConfigureHttpJsonOptions(o => MultiTaskBert.Api.Hosting.ServiceJson.Configure(o.SerializerOptions))
            .BuildServiceProvider();
        return new DefaultHttpContext { RequestServices = services, Response = { Body = new MemoryStream() } };
    }
}
