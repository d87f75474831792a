using Microsoft.Extensions.Options;
using MultiTaskBert.Tests.Support;

namespace MultiTaskBert.Tests.Operations;

[Collection(StartUpCollection.Name)]
public sealed class ManagementOptionsStartUpTests
{
    [Theory]
    [InlineData("-1")]
    [InlineData("65536")]
    public async Task Start_up_fails_for_a_management_port_outside_the_tcp_range(string port)
    {
        Exception error = await StartUpFailure.OfAsync(new Dictionary<string, string?> { ["Management:Port"] = port });

        Assert.Contains("Port", error.ToString());
        Assert.IsType<OptionsValidationException>(error is AggregateException a ? a.Flatten().InnerException : error);
    }
}
