#!/usr/bin/env bash
# The benchmark in one command: Release build, baselines exported when missing, the in-process
# serving-cost comparison (bench/MultiTaskBert.Bench), then the HTTP load test (bench/load.sh).
#   bench/run.sh                                   # models/default, dev sets from ../shared/data
#   BUNDLE=tests/fixtures/tiny-bundle bench/run.sh # any bundle
# Knobs: SECONDS_PER_SIZE (default 20), DURATION (wrk, default 5s per run), ROUNDS (default 3), THREADS (intra-op, 0 = ORT default).
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=${BUNDLE:-models/default}
NAME=$(basename "$BUNDLE")
BASELINES=${BASELINES:-bench/baselines/$NAME}
DATA=${DATA:-../shared/data}
mkdir -p bench/results

dotnet build bench/MultiTaskBert.Bench -c Release --nologo -v q
dotnet build src/MultiTaskBert.Api -c Release --nologo -v q

# Baselines are exported again when missing, when they were exported for another bundle version
# (an int8 bundle has int8 baselines), or when they do not cover every task of the bundle.
covered() {
  /usr/bin/python3 - "$BUNDLE/manifest.json" "$BASELINES/baselines.json" <<'PY'
import json, sys
manifest, index = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
tasks = {t["name"] for t in manifest["tasks"]}
same = index.get("bundle") == f"{manifest['name']}@{manifest['version']}"
sys.exit(0 if same and tasks <= set(index["tasks"]) else 1)
PY
}
if [ ! -f "$BASELINES/baselines.json" ] || ! covered; then
  echo "exporting one-model-per-task baselines to $BASELINES"
  PYTHONPATH=training /usr/bin/python3 -m mtbert export-baselines --bundle "$BUNDLE" --out "$BASELINES"
fi

dotnet bench/MultiTaskBert.Bench/bin/Release/net10.0/MultiTaskBert.Bench.dll \
  --bundle "$BUNDLE" --baselines "$BASELINES" --data "$DATA" \
  --seconds "${SECONDS_PER_SIZE:-20}" --threads "${THREADS:-0}" --out "bench/results/engine-$NAME.md"

BUNDLE="$BUNDLE" bench/load.sh | tee "bench/results/load-$NAME.md"
