using Microsoft.AspNetCore.Mvc;

namespace MultiTaskBert.Api.Errors;

/// <summary>Writes a problem from middleware (outside endpoints, where results cannot be returned).</summary>
internal static class ProblemWriter
{
    public static Task WriteProblemAsync(this HttpContext context, int status, string title, string detail)
    {
        context.Response.StatusCode = status;
        return context.RequestServices.GetRequiredService<IProblemDetailsService>().WriteAsync(new ProblemDetailsContext
        {
            HttpContext = context,
            ProblemDetails = new ProblemDetails { Status = status, Title = title, Detail = detail },
        }).AsTask();
    }
}
