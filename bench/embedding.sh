#!/usr/bin/env bash
# Issue #27's two serving figures for the embedding head, over HTTP with wrk on loopback:
#  1. /classify latency at one connection with and without the embedding head in the bundle, when
#     the embedding is not asked (target: within 2%). Side A serves a copy of the bundle with the
#     embedding task removed (`mtbert bundle remove`, in a temporary folder; with the pair tasks computed
#     from its embeddings, which need it), side B the bundle as
#     it is. Both services run at once; A and B take turns for ROUNDS rounds (the first a warm-up,
#     not counted); figures are medians over rounds, ratios the median of the per-round ratios.
#  2. /v1/embeddings throughput at 64 connections beside /classify's, on side B, taking turns the same way.
#   BUNDLE=models/default DURATION=8s ROUNDS=9 bench/embedding.sh
# (PYTHON: the toolkit's Python, /usr/bin/python3; the Release build of the API is made when missing.)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/wrk-lib.sh

BUNDLE=$(realpath "${BUNDLE:-models/default}")
DURATION=${DURATION:-8s}
ROUNDS=${ROUNDS:-9}
PORT=${PORT:-5299}
PYTHON=${PYTHON:-/usr/bin/python3}
LOG_DIR=${LOG_DIR:-bench/results}
API=src/MultiTaskBert.Api/bin/Release/net10.0/MultiTaskBert.Api.dll
mkdir -p "$LOG_DIR"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -f "$API" ] || dotnet build src/MultiTaskBert.Api -c Release --nologo -v q

work=$(mktemp -d)
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); rm -rf "$work"; }
trap stop EXIT

# Side A: the same bundle without its embedding task (never written into the bundle itself), and
# without the pair tasks computed from its embeddings (output.source), which a bundle cannot keep
# without it; the single-sentence /classify measured here reads neither.
cp -r "$BUNDLE" "$work/without-embedding"
embedding=$("$PYTHON" -c 'import json, sys; print(next(t["name"] for t in json.load(open(sys.argv[1]))["tasks"] if t["output"]["kind"] == "embedding"))' "$BUNDLE/manifest.json")
readers=$("$PYTHON" -c 'import json, sys; print(" ".join(t["name"] for t in json.load(open(sys.argv[1]))["tasks"] if (t["output"].get("source") or {}).get("way") == "embeddings"))' "$BUNDLE/manifest.json")
for task in $readers "$embedding"; do
  PYTHONPATH=training "$PYTHON" -m mtbert bundle remove "$work/without-embedding" --task "$task" >> "$LOG_DIR/embedding-remove.log"
done

declare -A URLS=([A]="http://127.0.0.1:$PORT" [B]="http://127.0.0.1:$((PORT + 1))")
declare -A BUNDLES=([A]="$work/without-embedding" [B]="$BUNDLE")
for side in A B; do
  Model__BundlePath="${BUNDLES[$side]}" Inference__Device=cpu Serilog__MinimumLevel__Default=Warning ASPNETCORE_ENVIRONMENT=Production \
    dotnet "$API" --urls "${URLS[$side]}" > "$LOG_DIR/embedding-service-$side.log" 2>&1 &
  pids+=($!)
done
for side in A B; do
  wait_ready "${URLS[$side]}" "$LOG_DIR/embedding-service-$side.log"
  wrk -t2 -c64 -d"${WARMUP:-10s}" --timeout 5s -s bench/wrk/classify.lua "${URLS[$side]}/classify" >/dev/null
done
wrk -t2 -c64 -d"${WARMUP:-10s}" --timeout 5s -s bench/wrk/embeddings.lua "${URLS[B]}/v1/embeddings" >/dev/null

runs="$LOG_DIR/embedding-runs.tsv"
printf 'case\tconnections\tround\t%s\n' "$(wrk_columns)" > "$runs"
for round in $(seq 0 "$ROUNDS"); do
  for side in A B; do
    printf 'classify-%s\t1\t%s\t%s\n' "$side" "$round" "$(wrk_row "$LOG_DIR/wrk-embedding-classify-$side-r$round.txt" -t1 -c1 -d"$DURATION" -s bench/wrk/classify.lua "${URLS[$side]}/classify")" >> "$runs"
  done
  printf 'classify-B\t64\t%s\t%s\n' "$round" "$(wrk_row "$LOG_DIR/wrk-embedding-classify64-r$round.txt" -t2 -c64 -d"$DURATION" -s bench/wrk/classify.lua "${URLS[B]}/classify")" >> "$runs"
  printf 'embeddings-B\t64\t%s\t%s\n' "$round" "$(wrk_row "$LOG_DIR/wrk-embedding-embeddings64-r$round.txt" -t2 -c64 -d"$DURATION" -s bench/wrk/embeddings.lua "${URLS[B]}/v1/embeddings")" >> "$runs"
done
stop

echo
echo "bundle $(basename "$BUNDLE") with its embedding task ($embedding) against a copy without it; wrk $DURATION per run, $ROUNDS rounds after a warm-up round, the cases in turn"
machine_line
"$PYTHON" - "$runs" <<'PY'
import csv, statistics, sys
from collections import defaultdict

runs = [r for r in csv.DictReader(open(sys.argv[1]), delimiter="\t") if r["round"] != "0"]
by = defaultdict(dict)
for r in runs:
    by[r["case"], r["connections"]][r["round"]] = r
label = {"classify-A": "/classify, bundle without the embedding", "classify-B": "/classify, bundle with the embedding (not asked)",
         "embeddings-B": "/v1/embeddings, bundle with the embedding"}

print("\n| endpoint | connections | requests/s | p50 ms | p99 ms | requests | errors (non-2xx + socket) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for (case, c), rounds in by.items():
    med = lambda key: statistics.median(float(r[key]) for r in rounds.values())
    print(f"| {label[case]} | {c} | {med('rps'):.1f} | {med('p50'):.2f} | {med('p99'):.2f} "
          f"| {sum(int(r['requests']) for r in rounds.values())} | {sum(int(r['errors']) for r in rounds.values())} |")

def ratios(new, old, key):
    return [float(new[k][key]) / float(old[k][key]) for k in sorted(new, key=int)]

a, b = by["classify-A", "1"], by["classify-B", "1"]
print("\n/classify at one connection, with the embedding head in the bundle against without (per round, then the median):\n")
print("| ratio | per round | median |")
print("| --- | --- | ---: |")
for key, name in (("p50", "p50 latency"), ("rps", "throughput")):
    values = ratios(b, a, key)
    print(f"| {name} | {', '.join(f'{v:.3f}' for v in values)} | **{statistics.median(values):.3f}** |")
values = ratios(by["embeddings-B", "64"], by["classify-B", "64"], "rps")
print(f"\n/v1/embeddings against /classify at 64 connections, requests/s: {', '.join(f'{v:.2f}' for v in values)}; median **{statistics.median(values):.2f}x**")
PY
