using Microsoft.OpenApi;
using Swashbuckle.AspNetCore.SwaggerGen;

namespace MultiTaskBert.Api.OpenApi;

/// <summary>Endpoint metadata: the operation takes the head upload form (<c>manifest</c> + <c>head</c>).</summary>
internal sealed record HeadUploadForm;

/// <summary>Endpoint metadata: the only request content type the document lists (the operation accepts more).</summary>
internal sealed record DocumentedBody(string ContentType);

/// <summary>
/// Documents the body of <c>POST /admin/tasks/upload</c> as what <c>MultipartUpload</c> reads: a
/// <c>manifest</c> part (the task's manifest entry, JSON text) and a binary <c>head</c> part (the ONNX
/// file), so Swagger UI shows a file picker and generated clients take a file.
/// </summary>
internal sealed class HeadUploadOperationFilter : IOperationFilter
{
    public const string Manifest = "manifest";
    public const string Head = "head";

    public void Apply(OpenApiOperation operation, OperationFilterContext context)
    {
        IList<object> metadata = context.ApiDescription.ActionDescriptor.EndpointMetadata;
        if (metadata.OfType<DocumentedBody>().FirstOrDefault() is { } documented && operation.RequestBody?.Content is { } content)
        {
            foreach (string other in content.Keys.Where(k => k != documented.ContentType).ToList())
            {
                content.Remove(other);
            }
        }

        if (!metadata.OfType<HeadUploadForm>().Any())
        {
            return;
        }

        // The only body documented for this operation: a generator then has one shape to type (a file part).
        var form = new Dictionary<string, IOpenApiMediaType>(StringComparer.Ordinal);
        operation.RequestBody = new OpenApiRequestBody { Required = true, Content = form };
        form["multipart/form-data"] = new OpenApiMediaType
        {
            Schema = new OpenApiSchema
            {
                Type = JsonSchemaType.Object,
                Required = new HashSet<string>([Manifest, Head], StringComparer.Ordinal),
                Properties = new Dictionary<string, IOpenApiSchema>(StringComparer.Ordinal)
                {
                    [Manifest] = new OpenApiSchema
                    {
                        Type = JsonSchemaType.String,
                        Description = "The task's manifest entry as JSON text (the TaskManifest schema; `mtbert export-head` writes it as entry.json); head.file and head.sha256 may be left out.",
                    },
                    [Head] = new OpenApiSchema { Type = JsonSchemaType.String, Format = "binary", Description = "The head's ONNX file (head.onnx)." },
                },
            },
            Encoding = new Dictionary<string, OpenApiEncoding>(StringComparer.Ordinal)
            {
                [Manifest] = new() { ContentType = "application/json" },
                [Head] = new() { ContentType = "application/octet-stream" },
            },
        };
    }
}
