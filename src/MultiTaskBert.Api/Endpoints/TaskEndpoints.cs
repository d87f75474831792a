using Microsoft.AspNetCore.Http.HttpResults;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Core.Engine;

namespace MultiTaskBert.Api.Endpoints;

internal static class TaskEndpoints
{
    public static RouteGroupBuilder MapTaskEndpoints(this IEndpointRouteBuilder routes)
    {
        RouteGroupBuilder group = routes.MapGroup("/tasks").WithTags("Tasks");
        group.MapGet("/", ListTasks)
            .WithName("ListTasks")
            .WithSummary("Lists the tasks of the loaded bundle with their labels and dev metrics.")
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
        return group;
    }

    internal static Ok<TasksResponse> ListTasks(MultiTaskEngine engine)
    {
        BundleSnapshot bundle = engine.Current ?? throw new EngineNotReadyException();
        return TypedResults.Ok(new TasksResponse(bundle.ModelId, [.. bundle.Tasks.Select(ContractMapper.ToTaskInfo)]));
    }
}
