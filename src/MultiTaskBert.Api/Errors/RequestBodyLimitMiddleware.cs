using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using MultiTaskBert.Api.Configuration;

namespace MultiTaskBert.Api.Errors;

/// <summary>
/// Enforces <see cref="LimitsOptions.MaxRequestBodyBytes"/>: a declared Content-Length over the
/// limit is refused with 413 before the body is read; a body without one (chunked) is counted as it
/// is read and throws 413 past the same limit (<see cref="ProblemExceptionHandler"/> maps it).
/// The count is ours rather than Kestrel's per-request limit, whose check for chunked bodies
/// refused bodies at or just under the limit that the Content-Length check let through.
/// </summary>
internal sealed class RequestBodyLimitMiddleware(RequestDelegate next, IOptions<LimitsOptions> limits)
{
    public async Task InvokeAsync(HttpContext context)
    {
        long limit = context.GetEndpoint()?.Metadata.GetMetadata<RequestBodyLimitOverride>() is { } custom
            ? custom.Limit(context.RequestServices)
            : limits.Value.MaxRequestBodyBytes;
        if (context.Request.ContentLength > limit)
        {
            await context.WriteProblemAsync(StatusCodes.Status413PayloadTooLarge, "The request body is too large.",
                $"(body): must be at most {limit} bytes (Limits:MaxRequestBodyBytes), got {context.Request.ContentLength}");
            return;
        }

        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } sizeFeature)
        {
            // With a Content-Length, Kestrel's own limit is the same check as above; without one, ours counts.
            sizeFeature.MaxRequestBodySize = context.Request.ContentLength is null ? null : limit;
        }

        if (context.Request.ContentLength is null)
        {
            context.Request.Body = new CountingBodyStream(context.Request.Body, limit);
        }

        await next(context);
    }

    /// <summary>Reads through to the request body and throws 413 once more than the limit has been read.</summary>
    private sealed class CountingBodyStream(Stream inner, long limit) : Stream
    {
        private long _read;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _read; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Count(inner.Read(buffer, offset, count));

        public override int Read(Span<byte> buffer) => Count(inner.Read(buffer));

        public override async Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            Count(await inner.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).ConfigureAwait(false));

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            Count(await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        private int Count(int read)
        {
            _read += read;
            if (_read > limit)
            {
                throw new BadHttpRequestException($"the body is larger than {limit} bytes", StatusCodes.Status413PayloadTooLarge);
            }

            return read;
        }
    }
}

/// <summary>Endpoint metadata: this endpoint's own body limit (e.g. head uploads) instead of <c>Limits:MaxRequestBodyBytes</c>.</summary>
internal sealed record RequestBodyLimitOverride(Func<IServiceProvider, long> Limit);
