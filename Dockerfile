# syntax=docker/dockerfile:1
#
# MultiTaskBert service image.
#   CPU (default): docker build -t multitaskbert .
#   GPU (CUDA):    docker build --build-arg FLAVOR=gpu -t multitaskbert:gpu .
# The GPU variant publishes with Microsoft.ML.OnnxRuntime.Gpu.Linux 1.31.0 (-p:OnnxRuntimeFlavor=Gpu),
# whose CUDA provider links CUDA 13 (cudart 13, cuBLAS 13) and cuDNN 9, and runs on NVIDIA's CUDA 13
# runtime image with cuDNN 9. Run it with `--gpus all` (or the NVIDIA device plugin on Kubernetes):
#   docker run --gpus all -p 8080:8080 multitaskbert:gpu
# It serves the bundle's float16 trunk on CUDA when the bundle has one (trunk.float16; docs/gpu.md).
#
# The bundle served by default is models/default (copied into the image when the build context
# has it); mount another bundle and set Model__BundlePath to serve that one.

ARG FLAVOR=cpu
ARG DOTNET_SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0-noble
ARG DOTNET_RUNTIME_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0-noble
ARG CUDA_RUNTIME_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04

# ---- build: restore (cached on project files), then publish -------------------------------------
FROM ${DOTNET_SDK_IMAGE} AS build
ARG FLAVOR
WORKDIR /src
COPY global.json Directory.Build.props Directory.Packages.props ./
COPY src/MultiTaskBert.Core/MultiTaskBert.Core.csproj src/MultiTaskBert.Core/
COPY src/MultiTaskBert.Api/MultiTaskBert.Api.csproj src/MultiTaskBert.Api/
RUN ORT=$([ "$FLAVOR" = "gpu" ] && echo Gpu || echo Cpu) \
 && dotnet restore src/MultiTaskBert.Api/MultiTaskBert.Api.csproj -p:OnnxRuntimeFlavor=$ORT
# Sources and models/ (see .dockerignore: no tests, training, runs, bin/obj).
COPY . .
RUN ORT=$([ "$FLAVOR" = "gpu" ] && echo Gpu || echo Cpu) \
 && dotnet publish src/MultiTaskBert.Api/MultiTaskBert.Api.csproj -c Release --no-restore \
      -p:OnnxRuntimeFlavor=$ORT -p:UseAppHost=false -o /app \
 && mkdir -p /app/models

# ---- runtime bases --------------------------------------------------------------------------------
FROM ${DOTNET_RUNTIME_IMAGE} AS runtime-cpu
ENV Inference__Device=cpu

# CUDA runtime + cuDNN from NVIDIA, ASP.NET Core runtime copied from Microsoft's image.
FROM ${DOTNET_RUNTIME_IMAGE} AS aspnet
FROM ${CUDA_RUNTIME_IMAGE} AS runtime-gpu
COPY --from=aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet \
 && groupadd --gid 1654 app && useradd --uid 1654 --gid app --no-create-home --shell /usr/sbin/nologin app
ENV APP_UID=1654 \
    ASPNETCORE_HTTP_PORTS=8080 \
    DOTNET_RUNNING_IN_CONTAINER=true \
    Inference__Device=cuda

# ---- final ----------------------------------------------------------------------------------------
FROM runtime-${FLAVOR} AS final
# curl only for HEALTHCHECK (the .NET images ship no HTTP client).
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build --chown=root:root /app ./
ENV ASPNETCORE_HTTP_PORTS=8080 \
    Logging__Format=json \
    Shutdown__DrainDelayMs=5000 \
    Shutdown__TimeoutSeconds=30 \
    DOTNET_gcServer=0
EXPOSE 8080
# Management__Port (off here; 9090 in docker/docker-compose.yml and docker/k8s) adds a listener that
# alone serves /metrics and Swagger: publish it to the operator's network only.
# Non-root (the .NET images' "app" user); the app files stay root-owned and read-only to it. Admin
# changes write into the bundle folder: mount a writable volume there when the admin API is on.
USER 1654
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health/ready || exit 1
ENTRYPOINT ["dotnet", "MultiTaskBert.Api.dll"]
