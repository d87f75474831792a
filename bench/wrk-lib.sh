# Shared by the wrk benchmarks (bench/load.sh, bench/embedding.sh): source it.

to_ms() { # "1.23ms" / "456.00us" / "1.02s" -> milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n = n; else if (v ~ /s$/) n *= 1000; printf "%.2f", n }'
}

# Waits until the service at $1 is ready (its log $2 is printed if it never is).
wait_ready() {
  for _ in $(seq 1 240); do
    curl -sf "$1/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  cat "$2" >&2; echo "service at $1 not ready" >&2; exit 1
}

wrk_columns() { printf 'rps\tp50\tp99\trequests\terrors'; }

# Runs wrk with the given arguments (--latency and a 5 s timeout added), keeps its output in $1 and
# prints one tab-separated row: requests/s, p50 ms, p99 ms, requests, errors (non-2xx + socket).
wrk_row() {
  local file=$1; shift
  local out rps p50 p99 total non2xx sock
  out=$(wrk --timeout 5s --latency "$@")
  echo "$out" > "$file"
  rps=$(echo "$out" | awk '/^Requests\/sec:/ { print $2 }')
  p50=$(to_ms "$(echo "$out" | awk '$1 == "50%" { print $2 }')")
  p99=$(to_ms "$(echo "$out" | awk '$1 == "99%" { print $2 }')")
  total=$(echo "$out" | awk '/requests in/ { print $1 }')
  non2xx=$(echo "$out" | awk '/Non-2xx/ { print $NF }'); non2xx=${non2xx:-0}
  sock=$(echo "$out" | awk '/Socket errors/ { gsub(",", ""); print $4 + $6 + $8 + $10 }'); sock=${sock:-0}
  printf '%s\t%s\t%s\t%s\t%s' "$rps" "$p50" "$p99" "$total" "$((non2xx + sock))"
}

# The processor and its vector extensions: ONNX Runtime's int8 kernels run at different speeds with and without AVX-512 VNNI.
machine_line() {
  local cpu_model cpu_vectors
  cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
  cpu_vectors=$(grep -m1 -o -w -E 'avx2|avx512f|avx512_vnni|avx_vnni|amx_int8' /proc/cpuinfo | tr '\n' ' ' || true)
  echo "machine: ${cpu_model:-unknown processor}, $(nproc) logical CPUs, vector extensions: ${cpu_vectors:-none of avx2/avx512f/avx512_vnni}"
}
