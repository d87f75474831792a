using System.Diagnostics;
using System.Diagnostics.Metrics;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Operations;

/// <summary>
/// HTTP-level instruments on the shared "MultiTaskBert" meter: requests by endpoint, task and
/// status, and end-to-end latency. Task labels are limited to loaded task names (anything else is
/// "(unknown)"), so that clients cannot grow the label set.
/// </summary>
internal sealed class RequestMetrics
{
    private const string TasksItem = "mtbert.tasks";
    private const string AllTasks = "(all)";

    private readonly RequestDelegate _next;
    private readonly Counter<long> _requests;
    private readonly Histogram<double> _duration;

    public RequestMetrics(RequestDelegate next, IMeterFactory meterFactory)
    {
        _next = next;
        Meter meter = meterFactory.Create(ServiceMeter.Name);
        _requests = meter.CreateCounter<long>(
            "mtbert.requests", unit: "{request}", description: "HTTP requests by endpoint, task and status code (a classify request counts once per task it named).");
        _duration = meter.CreateHistogram<double>(
            "mtbert.request.duration", unit: "s", description: "End-to-end HTTP request time by endpoint and status code.");
    }

    public async Task InvokeAsync(HttpContext context)
    {
        long start = Stopwatch.GetTimestamp();
        // Routing ran already; read the endpoint now (the exception handler clears it before writing a problem).
        string endpoint = (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "(none)";
        try
        {
            await _next(context);
        }
        finally
        {
            string status = context.Response.StatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var endpointTag = new KeyValuePair<string, object?>("endpoint", endpoint);
            var statusTag = new KeyValuePair<string, object?>("status", status);
            _duration.Record(Stopwatch.GetElapsedTime(start).TotalSeconds, endpointTag, statusTag);
            if (context.Items[TasksItem] is IReadOnlyList<string> tasks)
            {
                foreach (string task in tasks)
                {
                    _requests.Add(1, endpointTag, new KeyValuePair<string, object?>("task", task), statusTag);
                }
            }
            else
            {
                _requests.Add(1, endpointTag, new KeyValuePair<string, object?>("task", ""), statusTag);
            }
        }
    }

    /// <summary>Endpoint filter for the classify endpoints: remembers which (loaded) tasks the request named.</summary>
    public static ValueTask<object?> CaptureTasks(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        IReadOnlyList<string?>? named = null;
        foreach (object? argument in context.Arguments)
        {
            named = argument switch
            {
                ClassifyRequest r => r.Tasks ?? [AllTasks],
                ClassifyBatchRequest b => b.Tasks ?? [AllTasks],
                _ => named,
            };
        }

        if (named is not null)
        {
            BundleSnapshot? bundle = context.HttpContext.RequestServices.GetRequiredService<MultiTaskEngine>().Current;
            HashSet<string> loaded = bundle is null ? [] : [.. bundle.Tasks.Select(t => t.Name)];
            context.HttpContext.Items[TasksItem] = named
                .Select(t => t == AllTasks || (t is not null && loaded.Contains(t)) ? t! : "(unknown)")
                .Distinct(StringComparer.Ordinal)
                .ToArray();
        }

        return next(context);
    }
}
