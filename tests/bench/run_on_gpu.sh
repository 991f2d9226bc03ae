#!/usr/bin/env bash
# Runs the CUDA checks, then the ceilings benchmark, on a GPU machine from a bundle built on
# a machine without one. Correctness first: the CUDA kernel tests (STRATA_REQUIRE_GPU=1, so
# "no device" fails instead of skipping), then strata_bench_ceilings.
#
# On the build machine (no GPU needed), from the repository root:
#   flock /tmp/strata-build.lock ninja -C build strata strata_cuda_kernels_tests strata_cuda_tests strata_bench_ceilings strata_bench_model \
#     strata_bench_attention strata_engine_tests strata_attention_io
#   rm -rf .bundle/gpu .bundle/gpu.tgz && scripts/bundle.sh .bundle/gpu build/bin/strata \
#     build/tests/strata_cuda_kernels_tests build/tests/strata_cuda_tests build/tests/bench/strata_bench_ceilings \
#     build/tests/bench/strata_bench_model build/tests/bench/strata_bench_attention build/tests/strata_engine_tests \
#     build/tests/bench/strata_attention_io
#   strip --strip-debug .bundle/gpu/bin/* .bundle/gpu/lib/* && tar czf .bundle/gpu.tgz -C .bundle gpu
# (RelWithDebInfo binaries make a bundle of about 160 MB, 70 MB stripped, 24 MB as .tgz: carry
# the .tgz where what travels is limited.) On the GPU machine, from the repository root:
#   tests/bench/run_on_gpu.sh .bundle/gpu.tgz      # or a bundle folder: .bundle/gpu
#
# cudart is linked statically; the driver and cuBLASLt (libcublasLt.so.13) come from the GPU
# machine's CUDA install, everything else from BUNDLE/lib. Logs are written to $OUT when it is
# set, else to ./gpu-logs: nvidia_smi.txt, ldd.txt, cuda_kernels_tests.{log,xml},
# ceilings.{log,json}. Only read-only nvidia-smi queries are made: clocks, power limits and
# modes are measured as found, never changed. Exit status: nonzero if any step failed.
set -uo pipefail

bundle=${1:?usage: tests/bench/run_on_gpu.sh BUNDLE_DIR|BUNDLE.tgz [extra strata_bench_ceilings args]}
shift
if [[ -f $bundle ]]; then  # a .tgz holding one bundle folder
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  tar xzf "$bundle" -C "$unpacked" || exit 1
  bundle=$(find "$unpacked" -mindepth 1 -maxdepth 1 -type d | head -1)
fi
bundle=$(cd "$bundle" && pwd) || exit 1
[[ -x $bundle/bin/strata_cuda_kernels_tests && -x $bundle/bin/strata_bench_ceilings ]] || {
  echo "$bundle: no bin/strata_cuda_kernels_tests or bin/strata_bench_ceilings" >&2
  exit 1
}
logs=${OUT:-$PWD/gpu-logs}
mkdir -p "$logs"

cublas_dir=""
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
  if [[ -e $dir/libcublasLt.so.13 ]]; then
    cublas_dir=$dir
    break
  fi
done
if [[ -z $cublas_dir ]]; then  # the pip wheel nvidia-cublas, as a fallback
  cublas_dir=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' \
    2>/dev/null || true)
fi
export LD_LIBRARY_PATH="$bundle/lib${cublas_dir:+:$cublas_dir}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"

status=0
step() {  # step NAME COMMAND...: runs COMMAND, tees its output to $logs/NAME.log, records failure
  local name=$1
  shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee "$logs/$name.log"
  local rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc"
  if [[ $rc -ne 0 ]]; then status=1; fi
  return 0
}

{
  date -u
  nvidia-smi
  nvidia-smi -q -d CLOCK,POWER,PERFORMANCE,MEMORY
} >"$logs/nvidia_smi.txt" 2>&1 || status=1
head -20 "$logs/nvidia_smi.txt"

for binary in "$bundle"/bin/*; do
  echo "--- $binary"
  ldd "$binary"
done >"$logs/ldd.txt" 2>&1
if grep -q "not found" "$logs/ldd.txt"; then
  echo "missing shared libraries:"
  grep "not found" "$logs/ldd.txt"
  status=1
fi

step cuda_kernels_tests env STRATA_REQUIRE_GPU=1 "$bundle/bin/strata_cuda_kernels_tests" \
  --gtest_output="xml:$logs/cuda_kernels_tests.xml"
# The CUDA executor on the golden checkpoints of this source tree: against the CPU reference,
# and against transformers in bf16 on this GPU (its logits made first, by transformers itself).
if [[ -x $bundle/bin/strata_cuda_tests ]]; then
  step transformers_logits python3 tests/engine/cuda/transformers_logits.py --out "$logs/transformers_logits" \
    tests/golden/models/*/ models/default
  step cuda_executor_tests env STRATA_REQUIRE_GPU=1 STRATA_SOURCE_DIR="$(pwd)" \
    STRATA_TRANSFORMERS_LOGITS="$logs/transformers_logits" "$bundle/bin/strata_cuda_tests" \
    --gtest_output="xml:$logs/cuda_executor_tests.xml"
fi
# The engine soak (10,000 requests, cancellations, preemption) on the GPU.
if [[ -x $bundle/bin/strata_engine_tests ]]; then
  step soak_gpu env STRATA_TEST_DEVICE=cuda STRATA_SOURCE_DIR="$(pwd)" "$bundle/bin/strata_engine_tests" \
    --gtest_filter='EngineSoak.*'
fi
step ceilings "$bundle/bin/strata_bench_ceilings" --json "$logs/ceilings.json" "$@"
# Decode and prefill of the Llama-3-8B shape (dummy weights) against the roofline, with and
# without CUDA graphs.
if [[ -x $bundle/bin/strata_bench_model ]]; then
  step model_bench "$bundle/bin/strata_bench_model" --model configs/models/llama-3.1-8b --json "$logs/model_bench.json"
  step model_bench_eager "$bundle/bin/strata_bench_model" --model configs/models/llama-3.1-8b --prefill '' \
    --enforce-eager --json "$logs/model_bench_eager.json"
fi
# Paged attention: decode GB/s against the copy ceiling, causal prefill TFLOP/s; torch SDPA
# (flash backend) on the same shapes; then strata/SDPA per L.
if [[ -x $bundle/bin/strata_bench_attention ]]; then
  step attention_bench "$bundle/bin/strata_bench_attention" --json "$logs/attention_bench.json"
  step sdpa_bench python3 tests/bench/sdpa_bench.py --decode --json "$logs/sdpa_bench.json"
  if [[ -s $logs/attention_bench.json && -s $logs/sdpa_bench.json ]]; then
    step compare_attention python3 tests/bench/compare_attention.py "$logs/attention_bench.json" "$logs/sdpa_bench.json"
  fi
fi
# Prefill attention bit for bit against torch's FlashAttention-2 and cuDNN on random inputs.
if [[ -x $bundle/bin/strata_attention_io ]]; then
  step attention_vs_flash python3 tests/bench/attention_vs_flash.py "$bundle/bin/strata_attention_io"
fi
# Serving through `strata serve` on the GPU: the default model (readable, deterministic greedy
# chat), then the Llama-3-8B shape with dummy weights at concurrency 64 and 256, 1,024 input /
# 256 output tokens (the preset has no tokenizer: the golden byte-level BPE one, widened to the
# 128,256-token vocabulary so that every sampled id streams text, stands in).
if [[ ${STRATA_SKIP_SERVING:-0} != 1 ]]; then
  step serve_default tests/bench/serve_bench.sh "$bundle/bin/strata" "$logs" serve_default "16" \
    "--num-requests 64 --input-len 256 --output-len 64" -- --device cuda
  bench_tokenizer=$(mktemp -d)
  step bench_tokenizer python3 tests/bench/make_bench_tokenizer.py tests/golden/models/llama3_bpe "$bench_tokenizer" \
    --vocab 128256
  step serve_8b tests/bench/serve_bench.sh "$bundle/bin/strata" "$logs" serve_8b "64 256" \
    "--num-requests 256 --input-len 1024 --output-len 256 --quiet" -- --device cuda \
    --model configs/models/llama-3.1-8b --load-format dummy --tokenizer "$bench_tokenizer" \
    --max-model-len 4096 --max-num-seqs 256 --max-num-batched-tokens 2048
  # Chunks of 1,024 prompt tokens: shorter mixed steps (lower ITL tail) for a little prefill speed.
  step serve_8b_chunk1024 tests/bench/serve_bench.sh "$bundle/bin/strata" "$logs" serve_8b_chunk1024 "64" \
    "--num-requests 256 --input-len 1024 --output-len 256 --quiet" -- --device cuda \
    --model configs/models/llama-3.1-8b --load-format dummy --tokenizer "$bench_tokenizer" \
    --max-model-len 4096 --max-num-seqs 256 --max-num-batched-tokens 1024
fi

{
  echo
  echo "=== after the benchmark"
  date -u
  nvidia-smi -q -d CLOCK,PERFORMANCE
} >>"$logs/nvidia_smi.txt" 2>&1

echo "logs in $logs; status $status"
exit $status
