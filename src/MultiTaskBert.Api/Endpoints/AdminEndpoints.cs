using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;
using MultiTaskBert.Api.Contracts;
using MultiTaskBert.Api.Errors;
using MultiTaskBert.Api.OpenApi;
using MultiTaskBert.Core.Bundles;
using MultiTaskBert.Core.Registry;

namespace MultiTaskBert.Api.Endpoints;

/// <summary>
/// The hot task registry: add/replace, remove and reload tasks while serving, each change published
/// as a new bundle version that every replica follows; the versions kept and rollback to one. Off (404) unless
/// <c>Admin:ApiKey</c> is configured; callers send it in <c>X-Api-Key</c> (compared in constant time).
/// </summary>
internal static class AdminEndpoints
{
    public const string ApiKeyHeader = "X-Api-Key";

    /// <summary>Maps <c>/admin/*</c> when the admin API is on; when off nothing is mapped, so every method on every admin path is a 404.</summary>
    public static IEndpointRouteBuilder MapAdminEndpoints(this IEndpointRouteBuilder routes)
    {
        ArgumentNullException.ThrowIfNull(routes);
        if (!routes.ServiceProvider.GetRequiredService<IOptions<AdminOptions>>().Value.Enabled)
        {
            return routes;
        }

        RouteGroupBuilder group = routes.MapGroup("/admin").WithTags("Admin").AddEndpointFilter(RequireApiKey);
        group.DisableRequestTimeout();

        group.MapPost("/tasks", AddOrReplaceTaskAsync)
            .WithName("AddOrReplaceTask")
            .WithSummary("Adds a task or replaces it with a newer version: a JSON manifest task entry whose head.file lies inside the bundle. "
                + "The multipart upload of POST /admin/tasks/upload is accepted here too.")
            .Accepts<TaskManifest>("application/json", "multipart/form-data") // routing admits both; the handler reads either
            .WithMetadata(new DocumentedBody("application/json")) // one body per operation for client generators; the upload has its own
            .ProducesTaskChange();

        group.MapPost("/tasks/upload", AddOrReplaceTaskAsync)
            .WithName("UploadTask")
            .WithSummary("Adds a task or replaces it with a newer version from an uploaded head: multipart/form-data with 'manifest' "
                + "(the task's manifest entry as JSON) and 'head' (the ONNX file), stored under the bundle's heads/.")
            .WithMetadata(new HeadUploadForm())
            .ProducesTaskChange();

        group.MapDelete("/tasks/{name}", RemoveTaskAsync)
            .WithName("RemoveTask")
            .WithSummary("Removes a task (its head file stays while a kept bundle version reads it); 409 while a pair task is computed from its embeddings.")
            .Produces<TaskChangeResult>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);

        group.MapPost("/reload", ReloadAsync)
            .WithName("ReloadManifest")
            .WithSummary("Re-reads manifest.json and publishes it as the newest bundle version; unchanged heads and trunk keep their sessions.")
            .Produces<ReloadResult>()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);

        MapVersionEndpoints(group);
        return routes;
    }

    /// <summary>The published bundle versions (issue #28): their history and the rollback.</summary>
    private static void MapVersionEndpoints(RouteGroupBuilder group)
    {
        group.MapGet("/versions", ListVersionsAsync)
            .WithName("ListBundleVersions")
            .WithSummary("The published bundle versions kept (newest first; 0 is the bundle's manifest.json), the one this replica serves and the newest.")
            .Produces<VersionHistory>()
            .ProducesProblem(StatusCodes.Status401Unauthorized);

        group.MapPost("/rollback", RollbackAsync)
            .WithName("RollbackBundle")
            .WithSummary("Publishes an earlier bundle version's tasks again as the newest version (with the next model version); every replica follows.")
            .Accepts<RollbackRequest>("application/json")
            .Produces<RollbackResult>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity);
    }

    private static RouteHandlerBuilder ProducesTaskChange(this RouteHandlerBuilder endpoint) => endpoint
        .WithMetadata(new RequestBodyLimitOverride(static sp => sp.GetRequiredService<IOptions<AdminOptions>>().Value.MaxUploadBytes))
        .Produces<TaskChangeResult>()
        .ProducesValidationProblem()
        .ProducesProblem(StatusCodes.Status401Unauthorized)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
        .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

    private static async ValueTask<object?> RequireApiKey(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        AdminOptions options = context.HttpContext.RequestServices.GetRequiredService<IOptions<AdminOptions>>().Value;
        string? given = context.HttpContext.Request.Headers[ApiKeyHeader].Count == 1 ? context.HttpContext.Request.Headers[ApiKeyHeader][0] : null;
        if (given is null || !KeyMatches(given, options.ApiKey!))
        {
            // RFC 9110: a 401 names the scheme the client should use.
            context.HttpContext.Response.Headers.WWWAuthenticate = $"ApiKey header=\"{ApiKeyHeader}\"";
            return TypedResults.Problem(
                statusCode: StatusCodes.Status401Unauthorized,
                title: "Admin API key required.",
                detail: $"{ApiKeyHeader}: missing or wrong");
        }

        return await next(context);
    }

    /// <summary>Constant-time comparison; hashing first makes the time independent of the lengths too.</summary>
    internal static bool KeyMatches(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(
            SHA256.HashData(Encoding.UTF8.GetBytes(given)),
            SHA256.HashData(Encoding.UTF8.GetBytes(expected)));

    internal static async Task<IResult> AddOrReplaceTaskAsync(HttpContext context, BundleRegistry registry, IOptions<AdminOptions> options, CancellationToken cancellationToken)
    {
        HttpRequest request = context.Request;
        JsonObject entry;
        Stream? head = null;
        try
        {
            if (request.HasFormContentType)
            {
                string bundle = registry.BundleDirectory;
                MultipartUpload upload;
                try
                {
                    upload = await MultipartUpload.ReadAsync(request, bundle, options.Value.MaxUploadBytes, cancellationToken);
                }
                catch (MultipartUploadException ex)
                {
                    return Invalid(ex.Field, ex.Message);
                }

                head = upload.Head;
                entry = Parse(upload.Manifest) as JsonObject ?? throw new JsonException("the manifest entry must be a JSON object");
            }
            else if (request.HasJsonContentType())
            {
                entry = await JsonNode.ParseAsync(request.Body, documentOptions: StrictJson, cancellationToken: cancellationToken) as JsonObject
                        ?? throw new JsonException("the body must be a JSON object (a manifest task entry)");
            }
            else
            {
                return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type.",
                    detail: $"(body): Content-Type must be application/json or multipart/form-data, not '{request.ContentType}'");
            }
        }
        catch (JsonException ex)
        {
            if (head is not null)
            {
                await head.DisposeAsync();
            }

            return Invalid("(body)", $"not valid JSON: {ex.Message}");
        }

        await using (head)
        {
            return await Change(() => registry.AddOrReplaceTaskAsync(entry, head, cancellationToken));
        }
    }

    // Duplicate members are refused (a JsonObject with two "name"s would throw on first access).
    private static readonly JsonDocumentOptions StrictJson = new() { AllowDuplicateProperties = false };

    private static JsonNode? Parse(string json) => JsonNode.Parse(json, documentOptions: StrictJson);

    internal static Task<IResult> RemoveTaskAsync(string name, BundleRegistry registry, CancellationToken cancellationToken) =>
        Change(() => registry.RemoveTaskAsync(name, cancellationToken));

    internal static Task<IResult> ReloadAsync(BundleRegistry registry, CancellationToken cancellationToken) =>
        Change(() => registry.ReloadAsync(cancellationToken));

    internal static async Task<IResult> ListVersionsAsync(BundleRegistry registry, CancellationToken cancellationToken) =>
        TypedResults.Ok(await registry.ListVersionsAsync(cancellationToken));

    internal static async Task<IResult> RollbackAsync(HttpRequest request, BundleRegistry registry, CancellationToken cancellationToken)
    {
        if (!request.HasJsonContentType())
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status415UnsupportedMediaType, title: "Unsupported media type.",
                detail: $"(body): Content-Type must be application/json, not '{request.ContentType}'");
        }

        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(request.Body, documentOptions: StrictJson, cancellationToken: cancellationToken);
        }
        catch (JsonException ex)
        {
            return Invalid("(body)", $"not valid JSON: {ex.Message}");
        }

        if (body is not JsonObject o || o["version"] is not JsonValue v || v.GetValueKind() != JsonValueKind.Number
            || !v.TryGetValue(out long version) || version < 0 || version > RollbackRequest.MaxVersion)
        {
            return Invalid("version", $"required: a whole number in 0..{RollbackRequest.MaxVersion} (GET /admin/versions lists those kept)");
        }

        try
        {
            return await Change(() => registry.RollbackAsync(version, cancellationToken));
        }
        catch (VersionNotFoundException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such bundle version.", detail: $"version: {ex.Message}");
        }
    }

    private static async Task<IResult> Change<T>(Func<Task<T>> change)
    {
        try
        {
            return TypedResults.Ok(await change());
        }
        catch (BundleValidationException ex)
        {
            return Refused(ex);
        }
        catch (TaskConflictException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status409Conflict, title: "The change conflicts with the loaded task or bundle version.",
                detail: $"{ex.Field}: {ex.Message}");
        }
        catch (TaskNotFoundException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status404NotFound, title: "No such task.", detail: $"name: {ex.Message}");
        }
    }

    /// <summary>422: the head or entry failed validation; the version in service keeps serving.</summary>
    private static ProblemHttpResult Refused(BundleValidationException ex) =>
        TypedResults.Problem(
            statusCode: StatusCodes.Status422UnprocessableEntity,
            title: "The task was refused; the version in service is unchanged.",
            detail: ex.Message,
            extensions: new Dictionary<string, object?> { ["file"] = ex.File, ["field"] = ex.Field });

    private static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] }, detail: $"{field}: {message}", title: "The request is invalid.");
}
