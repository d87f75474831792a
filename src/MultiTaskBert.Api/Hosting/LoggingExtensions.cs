using MultiTaskBert.Api.Configuration;
using Serilog;
using Serilog.Formatting.Compact;

namespace MultiTaskBert.Api.Hosting;

/// <summary>Serilog for this host: configuration, console format, and one line per request.</summary>
internal static class LoggingExtensions
{
    /// <summary>
    /// Serilog from the "Serilog" configuration section, written to the console in the
    /// <c>Logging:Format</c> chosen. The static <c>Log.Logger</c> is left alone: otherwise each host
    /// would install its logger there and close whatever is there when it stops, so with two hosts
    /// in one process (the tests) the first to stop would dispose the other's logger.
    /// </summary>
    public static IServiceCollection AddServiceLogging(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LogFormatOptions>().BindConfiguration(LogFormatOptions.SectionName).ValidateDataAnnotations().ValidateOnStart();
        services.AddSerilog(
            (provider, logger) => logger
                .ReadFrom.Configuration(configuration)
                .ReadFrom.Services(provider)
                .Enrich.FromLogContext()
                .WriteToConsole(configuration),
            preserveStaticLogger: true);
        return services;
    }

    /// <summary>One line per request; outermost but for request ids, so it sees the final status (after problem details were written).</summary>
    public static IApplicationBuilder UseRequestLogging(this IApplicationBuilder app) =>
        app.UseSerilogRequestLogging(o =>
        {
            o.Logger = app.ApplicationServices.GetRequiredService<Serilog.ILogger>(); // this host's logger, not the static one
            o.MessageTemplate = "HTTP {RequestMethod} {RequestPath} responded {StatusCode} in {Elapsed:0.000} ms";
        });

    /// <summary>Console sink: text lines, or one compact JSON object per event (<c>Logging:Format=json</c>).</summary>
    private static LoggerConfiguration WriteToConsole(this LoggerConfiguration logger, IConfiguration configuration) =>
        string.Equals(configuration["Logging:Format"], "json", StringComparison.OrdinalIgnoreCase)
            ? logger.WriteTo.Console(new RenderedCompactJsonFormatter())
            : logger.WriteTo.Console(outputTemplate: "[{Timestamp:HH:mm:ss} {Level:u3}] {SourceContext}: {Message:lj} {Properties:j}{NewLine}{Exception}",
                formatProvider: System.Globalization.CultureInfo.InvariantCulture);
}
