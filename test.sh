#!/usr/bin/env bash
# Every test of the project: the training toolkit (pytest) and the service (xunit), the service's
# suite on both ONNX Runtime flavours (CPU package; GPU package without its Fault tests), and the
# clients generated from the service's OpenAPI document (clients/test.sh: NuGet and npm packages,
# pinned, restored on the first run). Needs the .NET 10 SDK and Node.js; runs from the repository alone. With ../shared beside the repository (the real datasets and
# pretrained checkpoints) the toolkit's tests marked 'shared' run too; without it they are skipped.
set -uo pipefail
cd "$(dirname "$0")"

.ci/install-deps || exit 1   # Debian packages for the toolkit and the fault tests, when missing

echo "== build (the toolkit's own-task walkthrough test starts the built service) =="
dotnet build MultiTaskBert.sln --nologo -v quiet -warnaserror || exit 1

status=0
echo "== training toolkit (pytest) =="
if [ ! -d ../shared ]; then
  echo "SKIPPED: the toolkit tests marked 'shared' (real datasets and checkpoints: fixture regeneration, every real task parses, default checkpoint loads), because ../shared is not beside the repository"
fi
(cd training && /usr/bin/python3 -m pytest -q -p no:cacheprovider tests) || status=$?

echo "== service (xunit; includes the nginx fault tests, Category=Fault) =="
rm -f tests/MultiTaskBert.Tests/bin/*/net10.0/fault-figures.md
dotnet test MultiTaskBert.sln --no-build --nologo -v quiet --logger "console;verbosity=minimal" || status=$?

if [ -f models/default/manifest.json ]; then
  echo "== default bundle: token ids, logits, out-of-domain distances, embeddings and pair tasks from embeddings of C# vs PyTorch (models/default/parity.json); resident memory under the largest batches =="
  MULTITASKBERT_TEST_BUNDLE="$PWD/models/default" dotnet test tests/MultiTaskBert.Tests --no-build --nologo -v quiet --logger "console;verbosity=minimal" \
    --filter "FullyQualifiedName~Ids_equal_the_toolkit_reference_ids|FullyQualifiedName~Every_task_matches_pytorch_within_tolerance|FullyQualifiedName~Every_out_of_domain_distance_matches_pytorch_within_tolerance|FullyQualifiedName~Every_pair_task_from_embeddings_matches_the_toolkit_within_its_tolerance|FullyQualifiedName~EmbeddingApiTests|FullyQualifiedName~ClassifyApiTests|FullyQualifiedName~Resident_memory_stays_bounded" || status=$?
fi

echo "== clients from the OpenAPI document: Kiota, NSwag, openapi-typescript generated, compiled and run against the service; Redocly lint; Swagger UI examples in headless chromium (clients/test.sh) =="
clients/test.sh || status=$?

echo "== service on the GPU flavour of ONNX Runtime (CUDA 13 package; no GPU here: the CPU fallback and the refusal of cuda, on that package's native library) =="
# Own output folders (bin/gpu, obj/gpu), so the CPU build above stays as it is; the fault tests run once, above.
dotnet build MultiTaskBert.sln -p:OnnxRuntimeFlavor=Gpu --nologo -v quiet || status=$?
dotnet test tests/MultiTaskBert.Tests -p:OnnxRuntimeFlavor=Gpu --no-build --nologo -v quiet --logger "console;verbosity=minimal" \
  --filter "Category!=Fault" || status=$?

echo "== fault-test figures (nginx + two service processes on loopback; docs/reliability.md) =="
cat tests/MultiTaskBert.Tests/bin/*/net10.0/fault-figures.md 2>/dev/null || echo "(no figures: the fault tests did not run)"
exit $status
