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
builder.Services.AddMultiTaskEngine();
builder.Services.AddAdminApi();
builder.Services.AddGracefulShutdown();
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
app.UseMiddleware<RequestBodyLimitMiddleware>();
app.UseMiddleware<JsonCharsetMiddleware>();
app.UseRequestTimeouts();
app.UseOnManagementListener(docs => docs.UseSwagger().UseSwaggerUI());

// Every endpoint of the service. Without ServedOn an endpoint is public; the listeners only differ
// when Management:Port is set (otherwise one listener serves all).
app.MapClassifyEndpoints().WithTaskMetrics();
app.MapTaskEndpoints();
app.MapEmbeddingEndpoints();
app.MapAdminEndpoints();
app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false })
    .ServedOn(Listeners.Both);
app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ModelReadyHealthCheck.Tag) })
    .ServedOn(Listeners.Both);
app.MapMetrics("/metrics", app.Services.GetRequiredService<PrometheusExport>().Registry).DisableRequestTimeout()
    .ServedOn(Listeners.Management);

app.Run();

/// <summary>Entry point; public for WebApplicationFactory.</summary>
public partial class Program;
