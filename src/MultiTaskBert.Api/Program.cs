using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using MultiTaskBert.Api.Endpoints;
using MultiTaskBert.Api.Errors;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Api.Hosting;
using MultiTaskBert.Api.Management;
using Prometheus;

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);

builder.Services.AddServiceLogging(builder.Configuration);
builder.Services.ConfigureHttpJsonOptions(o => ServiceJson.Configure(o.SerializerOptions));
builder.Services.AddProblemResponses();
builder.Services.AddSwaggerDocs();
builder.Services.AddApiAccess();
builder.Services.AddMultiTaskEngine();
builder.Services.AddAdminApi();
builder.Services.AddGracefulShutdown();
builder.Services.AddIdleMemoryTrim();
builder.Services.AddRequestTimeoutsFromLimits();
builder.Services.AddPrometheusExport();
builder.Services.AddManagementListener();
builder.Services.AddMicroBatching();

WebApplication app = builder.Build();

app.UseRequestIds();
app.UseRequestLogging();
app.UseRequestMetrics();
app.UseExceptionHandler(new ExceptionHandlerOptions
{
    // Bad input mapped to a 4xx is the client's problem: no error log with a stack trace for it.
    SuppressDiagnosticsCallback = c => c.HttpContext.Response.StatusCode < StatusCodes.Status500InternalServerError,
});
app.UseStatusCodePages();
app.UseApiCors();
app.UseMiddleware<RequestBodyLimitMiddleware>();
app.UseMiddleware<JsonCharsetMiddleware>();
app.UseRequestTimeouts();
app.UseOnManagementListener(docs => docs.UseSwagger().UseSwaggerUI());

// Every endpoint of the service. Without ServedOn an endpoint is public; the listeners only differ
// when Management:Port is set (otherwise one listener serves all).
app.MapClassifyEndpoints().WithTaskMetrics().RequirePublicApiKey();
app.MapTaskEndpoints().RequirePublicApiKey();
app.MapEmbeddingEndpoints();
app.MapAdminEndpoints();
// Health and metrics are read-only: GET and HEAD, any other method is a 405.
app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false })
    .WithMetadata(ReadOnly)
    .ServedOn(Listeners.Both);
app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ModelReadyHealthCheck.Tag), ResponseWriter = ModelReadyHealthCheck.WriteAsync })
    .WithMetadata(ReadOnly)
    .ServedOn(Listeners.Both);
app.MapMetrics("/metrics", app.Services.GetRequiredService<PrometheusExport>().Registry).DisableRequestTimeout()
    .WithMetadata(ReadOnly)
    .ServedOn(Listeners.Management);

app.Run();

/// <summary>Entry point; public for WebApplicationFactory.</summary>
public partial class Program
{
    /// <summary>The methods a read-only endpoint (health, metrics) answers.</summary>
    private static readonly HttpMethodMetadata ReadOnly = new([HttpMethods.Get, HttpMethods.Head]);
}
