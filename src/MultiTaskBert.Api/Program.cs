using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using MultiTaskBert.Api.Endpoints;
using MultiTaskBert.Api.Errors;
using MultiTaskBert.Api.Health;
using MultiTaskBert.Api.Hosting;
using Serilog;

WebApplicationBuilder builder = WebApplication.CreateBuilder(args);

// Serilog from the "Serilog" configuration section. The static Log.Logger is left alone: otherwise
// each host would install its logger there and close whatever is there when it stops, so with two
// hosts in one process (the tests) the first to stop would dispose the other's logger.
builder.Services.AddSerilog(
    (services, logger) => logger
        .ReadFrom.Configuration(builder.Configuration)
        .ReadFrom.Services(services)
        .Enrich.FromLogContext()
        .WriteToConsole(builder.Configuration),
    preserveStaticLogger: true);

builder.Services.ConfigureHttpJsonOptions(o =>
{
    o.SerializerOptions.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
    // Strict bodies: {"text":"a","text":"b"} is a 400 (not last-wins), and "TEXT" is an unknown
    // member rather than "text" (the web defaults match names case-insensitively).
    o.SerializerOptions.AllowDuplicateProperties = false;
    o.SerializerOptions.PropertyNameCaseInsensitive = false;
});
builder.Services.AddProblemResponses();
builder.Services.AddSwaggerDocs();
builder.Services.AddMultiTaskEngine();
builder.Services.AddOperations();
builder.Services.AddMicroBatching();

WebApplication app = builder.Build();

app.UseRequestIds();
// Outermost, so the one line per request sees the final status (after problem details were written).
app.UseSerilogRequestLogging(o =>
{
    o.Logger = app.Services.GetRequiredService<Serilog.ILogger>(); // this host's logger, not the static one
    o.MessageTemplate = "HTTP {RequestMethod} {RequestPath} responded {StatusCode} in {Elapsed:0.000} ms";
});
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

app.UseSwagger();
app.UseSwaggerUI();

app.MapClassifyEndpoints().WithTaskMetrics();
app.MapTaskEndpoints();
app.MapOperations();
app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ModelReadyHealthCheck.Tag) });

app.Run();

/// <summary>Entry point; public for WebApplicationFactory.</summary>
public partial class Program;
