#!/usr/bin/env bash
# HTTP load test of the service with wrk, micro-batching on (Batching:MaxWaitMs=2) and off (0),
# at concurrency 1, 16 and 64. Loopback only; the service is started and stopped here.
#   BUNDLE=models/default DURATION=10s bench/load.sh   (THREADS: Inference:IntraOpThreads, 0 = ONNX Runtime default)
set -euo pipefail
cd "$(dirname "$0")/.."

BUNDLE=$(realpath "${BUNDLE:-models/default}")
DURATION=${DURATION:-10s}
PORT=${PORT:-5199}
CONNECTIONS=${CONNECTIONS:-"1 16 64"}
MODES=${MODES:-"on off"}
API=src/MultiTaskBert.Api/bin/Release/net10.0/MultiTaskBert.Api.dll
LOG_DIR=${LOG_DIR:-bench/results}
mkdir -p "$LOG_DIR"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
[ -f "$API" ] || dotnet build src/MultiTaskBert.Api -c Release --nologo -v q

to_ms() { # "1.23ms" / "456.00us" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

pid=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=""; fi; }
trap stop EXIT

rows=()
for mode in $MODES; do
  wait_ms=2; [ "$mode" = off ] && wait_ms=0
  Batching__MaxWaitMs=$wait_ms Model__BundlePath="$BUNDLE" Inference__Device=cpu Inference__IntraOpThreads="${THREADS:-0}" \
    Serilog__MinimumLevel__Default=Warning ASPNETCORE_ENVIRONMENT=Production \
    dotnet "$API" --urls "http://127.0.0.1:$PORT" > "$LOG_DIR/service-$mode.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do
    curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || { cat "$LOG_DIR/service-$mode.log" >&2; exit 1; }
    sleep 0.5
  done
  curl -sf "http://127.0.0.1:$PORT/health/ready" >/dev/null || { echo "service not ready" >&2; exit 1; }
  # Warm-up: JIT, ONNX Runtime arenas.
  wrk -t2 -c16 -d3s --timeout 5s -s bench/wrk/classify.lua "http://127.0.0.1:$PORT/classify" >/dev/null

  for c in $CONNECTIONS; do
    threads=$(( c < 2 ? 1 : 2 ))
    out=$(wrk -t"$threads" -c"$c" -d"$DURATION" --timeout 5s --latency -s bench/wrk/classify.lua "http://127.0.0.1:$PORT/classify")
    echo "$out" > "$LOG_DIR/wrk-$mode-c$c.txt"
    rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
    p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
    p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
    total=$(echo "$out" | awk '/requests in/ { print $1 }')
    non2xx=$(echo "$out" | awk '/Non-2xx/ { print $NF }'); non2xx=${non2xx:-0}
    sock=$(echo "$out" | awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }'); sock=${sock:-0}
    rows+=("| $mode (MaxWaitMs=$wait_ms) | $c | $rps | $p50 | $p99 | $total | $((non2xx + sock)) |")
  done
  stop
done

echo
echo "HTTP load, POST /classify, one utterance per request, every single-sentence task; wrk $DURATION per row; bundle $(basename "$BUNDLE"); Inference:IntraOpThreads=${THREADS:-0} (0 = ONNX Runtime default)"
echo
echo "| batching | connections | requests/s | p50 ms | p99 ms | requests | errors (non-2xx + socket) |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${rows[@]}"
