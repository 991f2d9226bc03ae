#!/usr/bin/env bash
# Builds the libFuzzer harnesses of tests/fuzz/ (clang, ASan+UBSan, CPU only) into build-fuzz/ and
# runs each over its seed corpus (tests/fuzz/corpus/<target>/) for STRATA_FUZZ_SECONDS. Any crash,
# leak, timeout, out-of-memory or sanitizer report fails the run and names the reproducer.
# Usage: scripts/test_fuzz.sh [target ...]   (default: every harness; a target is e.g. http_request)
# Env: STRATA_FUZZ_BUILD_DIR (default build-fuzz/), STRATA_FUZZ_SECONDS (default 30 per target),
#      STRATA_FUZZ_JOBS (targets fuzzed at once, default nproc), STRATA_JOBS (build jobs).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${STRATA_FUZZ_BUILD_DIR:-$root/build-fuzz}
jobs=${STRATA_JOBS:-$(nproc)}
seconds=${STRATA_FUZZ_SECONDS:-30}
parallel=${STRATA_FUZZ_JOBS:-$(nproc)}

# Debug keeps assert() on; -O1 as libFuzzer recommends. STRATA_FUZZ (CMakeLists.txt) holds the
# sanitizer and coverage flags; tests/fuzz/CMakeLists.txt the harnesses.
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_FLAGS="-O1" -DCMAKE_CXX_FLAGS="-O1" \
  -DSTRATA_ENABLE_CUDA=OFF -DSTRATA_WERROR=ON -DSTRATA_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd "$root/tests/fuzz" && ls -- *_fuzz.cpp | sed 's/_fuzz\.cpp$//')
fi
echo "test_fuzz: building ${targets[*]}"
ninja -C "$build_dir" -j "$jobs" "${targets[@]/#/strata_fuzz_}"
echo "test_fuzz: built in ${SECONDS}s"

supp=$root/tests/sanitizers
export ASAN_OPTIONS="detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"

# One target: fuzz a writable copy of the seeds (committed seeds stay as they are; what the
# fuzzer adds stays in build-fuzz/ for the next local run). Writes its exit status to work/rc.
fuzz_target() {
  local target=$1 work=$build_dir/fuzz-work/$1
  mkdir -p "$work/corpus" "$work/artifacts"
  rm -f "$work"/artifacts/*
  local seed
  for seed in "$root/tests/fuzz/corpus/$target"/*; do
    [ -e "$work/corpus/${seed##*/}" ] || cp "$seed" "$work/corpus/"
  done
  local dict=()
  [ -f "$root/tests/fuzz/$target.dict" ] && dict=(-dict="$root/tests/fuzz/$target.dict")
  local rc=0
  "$build_dir/fuzz/strata_fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$work/artifacts/" "${dict[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  echo "$rc" >"$work/rc"
}

echo "test_fuzz: ${seconds}s per target, $parallel at a time"
running=0
for target in "${targets[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
  fuzz_target "$target" &
  running=$((running + 1))
done
wait

failed=0
for target in "${targets[@]}"; do
  work=$build_dir/fuzz-work/$target
  rc=$(cat "$work/rc" 2>/dev/null || echo 1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
  if [ "$rc" = 0 ] && ! grep -qE "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:" "$work/log"; then
    echo "test_fuzz: $target ok (${runs:-?} runs, corpus $(ls "$work/corpus" | wc -l) inputs)"
    continue
  fi
  failed=1
  echo "test_fuzz: $target FAILED (exit $rc); log $work/log" >&2
  grep -E "ERROR|runtime error|SUMMARY|==[0-9]+==|^    #[0-9]" "$work/log" | head -60 >&2 || true
  for artifact in "$work"/artifacts/*; do
    [ -e "$artifact" ] || continue
    echo "test_fuzz: reproducer $artifact" >&2
    echo "test_fuzz:   rerun with: $build_dir/fuzz/strata_fuzz_$target $artifact" >&2
  done
done
echo "test_fuzz: done in ${SECONDS}s"
exit "$failed"
