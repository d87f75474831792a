#!/usr/bin/env bash
# The GPU check, on the GPU machine, in one go (docs/gpu.md): unpacks what bench/gpu/prepare.sh
# built (sent in parts to DIR by earlier calls), then
#   1. the execution provider of every node of the trunk and heads (no float node on the CPU),
#   2. hidden states kept in device memory between trunk and heads (IO binding),
#   3. GPU logits vs CPU logits on the bundle's parity.json texts, within the stated tolerances,
#   4. in-process utterances/s of the bundle, one model per task and the trunk alone at batch 1, 8, 32, 64,
#   5. HTTP throughput at 64 connections, micro-batching on and off (bench/load.sh, wrk).
# Writes its reports to $OUT (the device tool's output folder) or bench/results/gpu.
#   bench/gpu/run.sh /tmp/mtbert-gpu             # on the GPU machine
#   DEVICE=cpu bench/gpu/run.sh /tmp/mtbert-gpu  # the same steps on a CPU (checks the script; no GPU figure)
set -euo pipefail
cd "$(dirname "$0")/../.."
DIR=$(realpath "${1:?usage: bench/gpu/run.sh DIR_WITH_PARTS}")
BUNDLE=$(realpath "${BUNDLE:-models/default}")
DEVICE=${DEVICE:-cuda}
RESULTS=${OUT:-bench/results/gpu}
SECONDS_PER_SIZE=${SECONDS_PER_SIZE:-5}
mkdir -p "$RESULTS"
APP=$DIR/app

if [ ! -d "$APP" ]; then
  (cd "$DIR" && sha256sum -c --quiet SHA256SUMS)
  mkdir -p "$APP"
  cat "$DIR"/payload.tar.xz.* | xz -d -T0 | tar xf - -C "$APP"
  rm -f "$DIR"/payload.tar.xz.*
fi
# libonnxruntime.so loads its providers from its own folder: put the libraries beside each program.
for program in MultiTaskBert.Bench MultiTaskBert.Api; do
  for lib in "$APP"/ort/*.so; do ln -sf "$lib" "$APP/$program/"; done
done

# CUDA 13, cuBLAS 13 and cuDNN 9: the system's CUDA and, where the image keeps them there, the Python wheels' libraries.
libs=/usr/local/cuda/lib64:/usr/local/cuda-13.0/targets/x86_64-linux/lib:/usr/lib/x86_64-linux-gnu
wheels=$(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(":".join(os.path.join(p, d, "lib") for d in sorted(os.listdir(p)) if os.path.isdir(os.path.join(p, d, "lib"))))' 2>/dev/null || true)
export LD_LIBRARY_PATH=$libs${wheels:+:$wheels}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export DOTNET_gcServer=0
command -v nvidia-smi >/dev/null && nvidia-smi -L | tee "$RESULTS/gpu.txt" || true

status=0
echo "== 1-4: in-process checks and throughput ($DEVICE) =="
"$APP/MultiTaskBert.Bench/MultiTaskBert.Bench" gpu --device "$DEVICE" --bundle "$BUNDLE" --baselines "$APP/baselines" \
  --data "$APP/data" --seconds "$SECONDS_PER_SIZE" --sizes 1,8,32,64 --work "$DIR/work" --out "$RESULTS/in-process.md" || status=$?

echo "== 5: HTTP, 64 connections, batching on and off =="
if ls "$APP"/debs/*.deb >/dev/null 2>&1; then
  mkdir -p "$DIR/wrk"
  for deb in "$APP"/debs/*.deb; do dpkg -x "$deb" "$DIR/wrk"; done
  export PATH="$DIR/wrk/usr/bin:$PATH" LD_LIBRARY_PATH="$DIR/wrk/usr/lib/x86_64-linux-gnu:$LD_LIBRARY_PATH"
  SERVICE="$APP/MultiTaskBert.Api/MultiTaskBert.Api" DEVICE="$DEVICE" PYTHON=python3 BUNDLE="$BUNDLE" MODES="on off" CONNECTIONS=64 \
    ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5s} WARMUP=${WARMUP:-5s} LOG_DIR="$DIR/load" bench/load.sh | tee "$RESULTS/http.md" || status=$?
  # The last table: "| 64 | 2.30x |" = batching on / off at 64 connections.
  ratio=$(awk -F'|' '$2 ~ /^ *64 *$/ && $3 ~ /x *$/ { gsub(/[ x]/, "", $3); r = $3 } END { print r }' "$RESULTS/http.md")
  echo "batching on / off at 64 connections: ${ratio:-?}x (target >= 3 on H100/H200)" | tee -a "$RESULTS/http.md"
  awk -v r="${ratio:-0}" 'BEGIN { exit !(r >= 3) }' || { [ "$DEVICE" = cpu ] || status=1; }
else
  echo "wrk packages missing from the payload: HTTP load test not run" | tee "$RESULTS/http.md"
  status=1
fi
exit $status
