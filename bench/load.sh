#!/usr/bin/env bash
# HTTP load test of the service with wrk: micro-batching on (Batching:MaxWaitMs=2, two batches in
# flight), on with one batch at a time (MaxConcurrentBatches=1) and off (MaxWaitMs=0), at
# concurrency 1, 16 and 64. All three services run at once (idle while another is measured) and
# the modes take turns, ROUNDS times per concurrency, so a slow spell of the machine hits them
# alike; figures are medians over rounds, ratios the median of the per-round ratios.
# Loopback only; the services are started and stopped here.
#   BUNDLE=models/default DURATION=5s ROUNDS=3 WARMUP=10s bench/load.sh   (THREADS: Inference:IntraOpThreads, 0 = ONNX Runtime default;
#   SERVICE, DEVICE, PYTHON: the service command, Inference:Device and the Python for the summary, as bench/gpu/run.sh sets them)
# Other modes for side-by-side comparisons (MODES="on shrink", REFERENCE=on): shrink (Inference:CpuArena=Shrink),
# pass1024 and uncapped (Batching:MaxPassTokens=1024 and 1048576, against the CPU default 512), lean (Shrink, and glibc
# serving blocks over 128 KiB with mmap, so that what the arena frees goes back to the system),
# base (BASE_SERVICE, e.g. "dotnet /work/base/src/MultiTaskBert.Api/bin/Release/net10.0/MultiTaskBert.Api.dll": an
# earlier build with its defaults, to check a change for a regression). Ratios are against REFERENCE (default off).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/wrk-lib.sh

BUNDLE=$(realpath "${BUNDLE:-models/default}")
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
PORT=${PORT:-5199}
CONNECTIONS=${CONNECTIONS:-"1 16 64"}
MODES=${MODES:-"on on1 off"}
API=src/MultiTaskBert.Api/bin/Release/net10.0/MultiTaskBert.Api.dll
LOG_DIR=${LOG_DIR:-bench/results}
# SERVICE: the command that starts the service (bench/gpu/run.sh passes a self-contained publish); DEVICE: Inference:Device.
DEVICE=${DEVICE:-cpu}
PYTHON=${PYTHON:-/usr/bin/python3}
mkdir -p "$LOG_DIR"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [ -z "${SERVICE:-}" ]; then
  [ -f "$API" ] || dotnet build src/MultiTaskBert.Api -c Release --nologo -v q
  SERVICE="dotnet $API"
fi

# mode -> the settings it changes from the service's defaults (MaxWaitMs=2, MaxConcurrentBatches=2)
declare -A SETTINGS=([on]="" [on1]="Batching__MaxConcurrentBatches=1" [off]="Batching__MaxWaitMs=0"
                     [shrink]="Inference__CpuArena=Shrink" [base]=""
                     [pass1024]="Batching__MaxPassTokens=1024" [uncapped]="Batching__MaxPassTokens=1048576"
                     [lean]="Inference__CpuArena=Shrink MALLOC_MMAP_THRESHOLD_=131072")
REFERENCE=${REFERENCE:-off}


pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; pids=(); }
trap stop EXIT

declare -A PORTS
next_port=$PORT
for mode in $MODES; do
  PORTS[$mode]=$next_port
  # shellcheck disable=SC2086 # the settings are NAME=value words
  # shellcheck disable=SC2086 # SERVICE may be "dotnet path.dll"
  service=$SERVICE
  if [ "$mode" = base ]; then service=${BASE_SERVICE:?mode base needs BASE_SERVICE, the command of the earlier build}; fi
  env ${SETTINGS[$mode]} Model__BundlePath="$BUNDLE" Inference__Device="$DEVICE" \
    Inference__IntraOpThreads="${THREADS:-0}" Serilog__MinimumLevel__Default=Warning ASPNETCORE_ENVIRONMENT=Production \
    $service --urls "http://127.0.0.1:$next_port" > "$LOG_DIR/service-$mode.log" 2>&1 &
  pids+=($!)
  next_port=$((next_port + 1))
done

for mode in $MODES; do
  url="http://127.0.0.1:${PORTS[$mode]}"
  wait_ready "$url" "$LOG_DIR/service-$mode.log"
  # Warm-up at full load: tiered JIT (a shorter one left the first round visibly slower), ONNX Runtime arenas.
  wrk -t2 -c64 -d"${WARMUP:-10s}" --timeout 5s -s bench/wrk/classify.lua "$url/classify" >/dev/null
done

runs="$LOG_DIR/load-runs.tsv"
printf 'mode\tconnections\tround\t%s\n' "$(wrk_columns)" > "$runs"
for c in $CONNECTIONS; do
  threads=$(( c < 2 ? 1 : 2 ))
  for round in $(seq 1 "$ROUNDS"); do
    for mode in $MODES; do
      printf '%s\t%s\t%s\t%s\n' "$mode" "$c" "$round" \
        "$(wrk_row "$LOG_DIR/wrk-$mode-c$c-r$round.txt" -t"$threads" -c"$c" -d"$DURATION" -s bench/wrk/classify.lua "http://127.0.0.1:${PORTS[$mode]}/classify")" >> "$runs"
    done
  done
done
# Resident memory of each service after the runs (VmRSS) and at its highest (VmHWM), in MiB.
memory="$LOG_DIR/load-memory.tsv"
printf 'mode\trss\thwm\n' > "$memory"
i=0
for mode in $MODES; do
  status=/proc/${pids[$i]}/status
  printf '%s\t%s\t%s\n' "$mode" "$(awk '/^VmRSS/ { print int($2 / 1024) }' "$status")" "$(awk '/^VmHWM/ { print int($2 / 1024) }' "$status")" >> "$memory"
  i=$((i + 1))
done
stop

echo
echo "HTTP load, POST /classify, one utterance per request, every single-sentence task; wrk $DURATION per run, $ROUNDS rounds (modes in turn); bundle $(basename "$BUNDLE"); Inference:IntraOpThreads=${THREADS:-0} (0 = ONNX Runtime default)"
machine_line
"$PYTHON" - "$runs" "$REFERENCE" "$memory" <<'EOF'
import csv, statistics, sys
from collections import defaultdict

runs = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
label = {"on": "on (defaults: MaxWaitMs=2, MaxConcurrentBatches=2)", "on1": "on, one batch at a time (MaxConcurrentBatches=1)", "off": "off (MaxWaitMs=0)",
         "shrink": "on, CpuArena=Shrink", "base": "on, the earlier build (BASE_SERVICE)",
         "pass1024": "on, MaxPassTokens=1024", "uncapped": "on, MaxPassTokens uncapped",
         "lean": "on, CpuArena=Shrink + MALLOC_MMAP_THRESHOLD_=131072"}
reference = sys.argv[2]
modes = list(dict.fromkeys(r["mode"] for r in runs))
connections = list(dict.fromkeys(r["connections"] for r in runs))
by = defaultdict(list)
for r in runs:
    by[r["mode"], r["connections"]].append(r)

print("\n| batching | connections | requests/s | p50 ms | p99 ms | requests | errors (non-2xx + socket) |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
for mode in modes:
    for c in connections:
        rs = by[mode, c]
        med = lambda key: statistics.median(float(r[key]) for r in rs)
        print(f"| {label.get(mode, mode)} | {c} | {med('rps'):.1f} | {med('p50'):.2f} | {med('p99'):.2f} "
              f"| {sum(int(r['requests']) for r in rs)} | {sum(int(r['errors']) for r in rs)} |")

if reference in modes:
    others = [m for m in modes if m != reference]
    print(f"\nThroughput against {label.get(reference, reference)} (median of the per-round ratios):\n")
    print("| connections | " + " | ".join(f"{label.get(m, m)} / {reference}" for m in others) + " |")
    print("| ---: | " + " | ".join("---:" for _ in others) + " |")
    for c in connections:
        base = {r["round"]: float(r["rps"]) for r in by[reference, c]}
        cells = [statistics.median(float(r["rps"]) / base[r["round"]] for r in by[m, c]) for m in others]
        print(f"| {c} | " + " | ".join(f"{x:.2f}x" for x in cells) + " |")

# This build against the earlier one, and the memory settings against the defaults, when measured.
for mode, against in (("on", "base"), ("shrink", "on"), ("lean", "on"), ("pass1024", "on"), ("uncapped", "on")):
    if mode in modes and against in modes and against != reference:
        print(f"\n{label[mode]} against {label[against]} (median of the per-round ratios):\n")
        print("| connections | requests/s | p99 |")
        print("| ---: | ---: | ---: |")
        for c in connections:
            other = {r["round"]: r for r in by[against, c]}
            rps = statistics.median(float(r["rps"]) / float(other[r["round"]]["rps"]) for r in by[mode, c])
            p99 = statistics.median(float(r["p99"]) / float(other[r["round"]]["p99"]) for r in by[mode, c])
            print(f"| {c} | {rps:.2f}x | {p99:.2f}x |")

memory = {r["mode"]: r for r in csv.DictReader(open(sys.argv[3]), delimiter="\t")}
print("\n| mode | resident MiB after the runs | highest resident MiB |")
print("| --- | ---: | ---: |")
for mode in modes:
    print(f"| {label.get(mode, mode)} | {memory[mode]['rss']} | {memory[mode]['hwm']} |")
EOF
