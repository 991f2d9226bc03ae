#!/usr/bin/env bash
# GPU soak (issue 14): `strata serve` on the Llama-3.1-8B shape with dummy weights, at
# concurrency 256 with mixed request kinds and 10% clients that hang up mid-stream, for
# DURATION_S seconds (scripts/soak.py), sampling the server's RSS and GPU memory. Passes when no
# request failed other than by its own disconnect, RSS and GPU memory after warm-up stayed flat
# (RSS growth <= 16 MiB, GPU memory growth 0) and every KV block is free at the end.
#
#   tests/bench/soak_on_gpu.sh BUNDLE_DIR|BUNDLE.tgz [DURATION_S (default 1800)] [NAME (default soak)]
#
# STRATA_SOAK_SERVER_FLAGS adds `strata serve` flags (e.g. --enforce-eager, --log-level debug).
# Growth is judged from the end of warm-up to the end of the load; the figures once the engine
# has drained are reported too.
#
# Logs to $OUT (else ./gpu-logs): NAME_server.log, NAME.json, NAME.log. Prints a table last.
set -uo pipefail
bundle=${1:?usage: tests/bench/soak_on_gpu.sh BUNDLE [DURATION_S]}
duration=${2:-1800}
name=${3:-soak}
here=$(cd "$(dirname "$0")/../.." && pwd)
if [[ -f $bundle ]]; then
  unpacked=$(mktemp -d)
  tar xzf "$bundle" -C "$unpacked" || exit 1
  bundle=$(find "$unpacked" -mindepth 1 -maxdepth 1 -type d | head -1)
fi
bundle=$(cd "$bundle" && pwd) || exit 1
logs=${OUT:-$PWD/gpu-logs}
mkdir -p "$logs"
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  [[ -e $dir/libcublasLt.so.13 ]] && { cublas_dir=$dir; break; }
done
export LD_LIBRARY_PATH="$bundle/lib${cublas_dir:+:$cublas_dir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

tokenizer=$(mktemp -d)
python3 "$here/tests/bench/make_bench_tokenizer.py" "$here/tests/golden/models/llama3_bpe" "$tokenizer" \
  --vocab 128256 >/dev/null || exit 1
port=$((19000 + RANDOM % 1000))
"$bundle/bin/strata" serve --port "$port" --grpc-port -1 --device cuda --model "$here/configs/models/llama-3.1-8b" \
  --load-format dummy --tokenizer "$tokenizer" --max-model-len 4096 --max-num-seqs 256 \
  --max-num-batched-tokens 2048 --max-queue 512 ${STRATA_SOAK_SERVER_FLAGS:-} >"$logs/${name}_server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do
  kill -0 "$server" 2>/dev/null || break
  python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/ready', timeout=2)" \
    2>/dev/null && break
  sleep 1
done
status=0
# Warm-up: the first 5% of the run (CUDA graphs captured, allocator pools filled).
PYTHONUNBUFFERED=1 python3 "$here/scripts/soak.py" --url "http://127.0.0.1:$port" --pid "$server" --requests 0 \
  --duration-s "$duration" --concurrency 256 --warmup 4000 --max-tokens 64 --prompt-words 400 \
  --disconnect-fraction 0.10 --error-fraction 0.05 --sample-interval-s 10 --json "$logs/$name.json" \
  2>&1 | tee "$logs/$name.log" || status=1
kill -TERM "$server"
wait "$server" || { echo "server exit status $?"; status=1; }
python3 - "$logs/$name.json" <<'PY' || status=1
import json, sys
r = json.load(open(sys.argv[1]))
checks = [("failures", r["failures"] == 0), ("RSS growth <= 16 MiB", (r["rss_growth_kib"] or 0) <= 16384),
          ("GPU memory flat", r["gpu_growth_mib"] == 0), ("KV blocks free at end", r["kv_blocks_used_at_end"] == 0)]
print("\n| GPU soak check | result |\n|---|---|")
for name, ok in checks:
    print(f"| {name} | {'pass' if ok else 'FAIL'} |")
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
exit $status
