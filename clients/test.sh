#!/usr/bin/env bash
# Typed clients from the served OpenAPI document (issue #30): generates a C# client with Kiota and
# one with NSwag (dotnet tools pinned in ../.config/dotnet-tools.json) and a TypeScript one with
# openapi-typescript + openapi-fetch (npm, pinned in typescript/package-lock.json); compiles each
# (tsc --strict, with an exhaustive switch on the answer kind) and runs each against the real host
# (every endpoint once, one error each, a head upload from each C# admin client); lints the document
# with Redocly (no errors). Then the browser test of Swagger UI (Debian chromium, headless).
# Needs the built service (dotnet build MultiTaskBert.sln), node/npm, and the registries (first run).
set -euo pipefail
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
cd "$(dirname "$0")"
here=$PWD
repo=$(cd .. && pwd)
work=$(mktemp -d /tmp/mtbert-clients.XXXXXX)
key=client-check-admin-key
service_pid=
cleanup() { [ -n "$service_pid" ] && kill "$service_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "-- restore: generators (dotnet tools), npm packages"
(cd "$repo" && dotnet tool restore >/dev/null)
(cd typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# The real host on a copy of the default bundle (the answers of every kind, fallbacks included), admin API on.
bundle_src="$repo/models/default"
[ -f "$bundle_src/manifest.json" ] || bundle_src="$repo/tests/fixtures/tiny-bundle"
cp -r "$bundle_src" "$work/bundle"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
api_dll="$repo/src/MultiTaskBert.Api/bin/Debug/net10.0/MultiTaskBert.Api.dll"
[ -f "$api_dll" ] || { echo "build the service first: dotnet build MultiTaskBert.sln" >&2; exit 1; }
dotnet "$api_dll" --urls "$base" --Model:BundlePath="$work/bundle" --Admin:ApiKey="$key" --Logging:LogLevel:Default=Warning >"$work/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 120); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.5; done
curl -sf "$base/health/ready" >/dev/null || { cat "$work/service.log"; echo "the service did not get ready" >&2; exit 1; }
curl -sf "$base/swagger/v1/swagger.json" -o "$work/openapi.json"

# A head to upload: a copy of one of the bundle's single-sentence classification heads under a new task name.
/usr/bin/python3 - "$work" <<'PY'
import json, sys, shutil
work = sys.argv[1]
manifest = json.load(open(f"{work}/bundle/manifest.json"))
entry = next(t for t in manifest["tasks"] if t["input"] == "single" and t["output"]["kind"] == "classification")
shutil.copy(f"{work}/bundle/{entry['head']['file']}", f"{work}/head.onnx")
entry["head"].pop("sha256", None)
json.dump(entry, open(f"{work}/entry.json", "w"))
PY

echo "-- lint: Redocly recommended rules (errors fail)"
typescript/node_modules/.bin/redocly lint --config redocly.yaml --format stylish "$work/openapi.json"

echo "-- Kiota (C#), NSwag (C#): generate, compile, run"
rm -rf csharp/Generated && mkdir -p csharp/Generated
(cd "$repo" && dotnet kiota generate --language CSharp --openapi "$work/openapi.json" --output "$here/csharp/Generated/Kiota" \
  --namespace-name ClientChecks.KiotaClient --class-name MtbKiotaClient --clean-output --exclude-backward-compatible --log-level Error)
(cd "$repo" && dotnet nswag openapi2csclient /input:"$work/openapi.json" /output:"$here/csharp/Generated/NSwagClient.cs" \
  /namespace:ClientChecks.NSwagClient /className:MtbNSwagClient /JsonLibrary:SystemTextJson /GenerateClientInterfaces:false \
  /UseBaseUrl:true /InjectHttpClient:true >/dev/null)
dotnet build csharp --nologo -v quiet -o "$work/csharp-bin"
dotnet "$work/csharp-bin/ClientChecks.dll" "$base" "$key" "$work/entry.json" "$work/head.onnx"

echo "-- openapi-typescript + openapi-fetch: generate, tsc --strict, run"
typescript/node_modules/.bin/openapi-typescript "$work/openapi.json" -o typescript/generated/schema.d.ts --silent
(cd typescript && node_modules/.bin/tsc -p . && node build/check.js "$base" "$key")

echo "-- Swagger UI in headless chromium: every example through 'Try it out'"
(cd typescript && node swagger-ui.mjs "$base" "$key" "$work/entry.json" "$work/head.onnx")
echo "clients: every check passed"
