using System.Text;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Net.Http.Headers;
using MultiTaskBert.Core.Bundles;

namespace MultiTaskBert.Api.Endpoints;

/// <summary>A multipart body that is not the admin upload's shape; <see cref="Exception.Message"/> says why.</summary>
internal sealed class MultipartUploadException(string field, string message) : Exception(message)
{
    public string Field { get; } = field;
}

/// <summary>
/// The multipart form of <c>POST /admin/tasks</c>: field <c>manifest</c> (the entry as JSON text)
/// and file <c>head</c> (the ONNX graph). Read section by section with <see cref="MultipartReader"/>
/// rather than the framework's form reader: a missing boundary or a truncated body is a 400 naming
/// the problem (the form reader threw, a 500), and the head is spooled into the bundle's own
/// <c>heads/.upload-*.tmp</c> (deleted when the stream closes; swept at start-up after a crash)
/// instead of <c>/tmp/ASPNETCORE_*.tmp</c> files that outlived their requests.
/// </summary>
internal sealed class MultipartUpload
{
    private const int MaxManifestBytes = 1024 * 1024;

    private MultipartUpload(string manifest, FileStream head)
    {
        Manifest = manifest;
        Head = head;
    }

    public string Manifest { get; }

    /// <summary>The spooled head, positioned at 0; deleted on dispose.</summary>
    public FileStream Head { get; }

    public static async Task<MultipartUpload> ReadAsync(HttpRequest request, string bundleDirectory, long maxHeadBytes, CancellationToken cancellationToken)
    {
        if (!MediaTypeHeaderValue.TryParse(request.ContentType, out MediaTypeHeaderValue? type)
            || !type.MediaType.Equals("multipart/form-data", StringComparison.OrdinalIgnoreCase))
        {
            throw new MultipartUploadException("Content-Type", $"must be multipart/form-data, not '{request.ContentType}'");
        }

        string boundary = HeaderUtilities.RemoveQuotes(type.Boundary).Value ?? "";
        if (boundary.Length is 0 or > 70)
        {
            throw new MultipartUploadException("Content-Type", "multipart/form-data needs a boundary parameter of 1-70 characters");
        }

        var reader = new MultipartReader(boundary, request.Body) { BodyLengthLimit = maxHeadBytes };
        string? manifest = null;
        FileStream? head = null;
        try
        {
            MultipartSection? section;
            while ((section = await ReadSectionAsync(reader, cancellationToken)) is not null)
            {
                string name = NameOf(section);
                switch (name)
                {
                    case "manifest" when manifest is null:
                        manifest = await ReadManifestAsync(section, cancellationToken);
                        break;
                    case "head" when head is null:
                        head = await SpoolAsync(section, bundleDirectory, cancellationToken);
                        break;
                    case "manifest" or "head":
                        throw new MultipartUploadException(name, "sent more than once");
                    default:
                        throw new MultipartUploadException($"({name})", "unknown form field; the upload has 'manifest' and 'head'");
                }
            }

            if (manifest is null)
            {
                throw new MultipartUploadException("manifest", "form field 'manifest' (the task's manifest entry as JSON) is required");
            }

            if (head is null)
            {
                throw new MultipartUploadException("head", "form file 'head' (the head ONNX graph) is required");
            }

            return new MultipartUpload(manifest, head);
        }
        catch
        {
            if (head is not null)
            {
                await head.DisposeAsync();
            }

            throw;
        }
    }

    private static async Task<MultipartSection?> ReadSectionAsync(MultipartReader reader, CancellationToken cancellationToken)
    {
        try
        {
            return await reader.ReadNextSectionAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException and not BadHttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            throw new MultipartUploadException("(body)", $"not a valid multipart body: {ex.Message}");
        }
    }

    private static string NameOf(MultipartSection section)
    {
        if (!ContentDispositionHeaderValue.TryParse(section.ContentDisposition, out ContentDispositionHeaderValue? disposition)
            || !disposition.DispositionType.Equals("form-data", StringComparison.OrdinalIgnoreCase)
            || HeaderUtilities.RemoveQuotes(disposition.Name).Value is not { Length: > 0 } name)
        {
            throw new MultipartUploadException("(body)", "every part needs 'Content-Disposition: form-data; name=...'");
        }

        return name;
    }

    private static async Task<string> ReadManifestAsync(MultipartSection section, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        await CopyAsync(section.Body, buffer, MaxManifestBytes, "manifest", cancellationToken);
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
        }
        catch (DecoderFallbackException)
        {
            throw new MultipartUploadException("manifest", "must be UTF-8 text");
        }
    }

    private static async Task<FileStream> SpoolAsync(MultipartSection section, string bundleDirectory, CancellationToken cancellationToken)
    {
        // FileShare.Read: the registry renames this file into place and validation reads it while it is still open.
        var file = new FileStream(BundleTempFiles.NewUploadPath(bundleDirectory), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        try
        {
            await CopyAsync(section.Body, file, long.MaxValue, "head", cancellationToken);
            file.Position = 0;
            return file;
        }
        catch
        {
            await file.DisposeAsync();
            throw;
        }
    }

    private static async Task CopyAsync(Stream from, Stream to, long limit, string field, CancellationToken cancellationToken)
    {
        byte[] buffer = new byte[1 << 16];
        long total = 0;
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer, cancellationToken)) > 0)
            {
                total += read;
                if (total > limit)
                {
                    throw new MultipartUploadException(field, $"must be at most {limit} bytes");
                }

                await to.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException and not BadHttpRequestException && !cancellationToken.IsCancellationRequested)
        {
            // A section that ends without its closing boundary, or one longer than Admin:MaxUploadBytes.
            throw new MultipartUploadException(field, $"could not be read: {ex.Message}");
        }
    }
}
