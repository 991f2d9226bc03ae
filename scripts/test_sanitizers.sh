#!/usr/bin/env bash
# Builds the GoogleTest unit tests (strata_*_tests) with AddressSanitizer + UndefinedBehaviorSanitizer
# into build-asan/ (CPU only) and runs the CPU ones. Any sanitizer report fails the run.
# Usage: scripts/test_sanitizers.sh [extra ctest args]
# Env: STRATA_ASAN_BUILD_DIR (default build-asan/), STRATA_JOBS, STRATA_TEST_JOBS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${STRATA_ASAN_BUILD_DIR:-$root/build-asan}
jobs=${STRATA_JOBS:-$(nproc)}
# Debug keeps assert() on; -O1 keeps the golden and soak tests fast enough under ASan
# (kernels/cpu adds its own -O3). STRATA_SANITIZE (CMakeLists.txt) holds the sanitizer flags.
# No CUDA: the sanitizers cover host code only.
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DSTRATA_ENABLE_CUDA=OFF -DSTRATA_WERROR=ON -DSTRATA_SANITIZE=ON \
  -DCMAKE_C_FLAGS="-O1" -DCMAKE_CXX_FLAGS="-O1"

# Set before the build too: gtest_discover_tests runs each executable once to list its tests.
# LeakSanitizer works here (no ptrace restriction); third-party suppressions: tests/sanitizers/.
supp=$root/tests/sanitizers
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"

# Only the unit-test executables: not the server binary, benchmarks or end-to-end tests.
mapfile -t targets < <(ninja -C "$build_dir" -t targets all | sed -n 's/^\(strata_[a-z_0-9]*_tests\): .*/\1/p')
if [ ${#targets[@]} -eq 0 ]; then
  echo "test_sanitizers: no strata_*_tests targets found in $build_dir" >&2
  exit 1
fi
echo "test_sanitizers: building ${targets[*]}"
ninja -C "$build_dir" -j "$jobs" "${targets[@]}"

cd "$build_dir"
# -L cpu: the gpu-labelled executables need a device. The e2e, default-model and dummy-load-format
# tests and the deployment-file check drive the server binary, which this build does not make.
ctest --output-on-failure --timeout 900 -j "${STRATA_TEST_JOBS:-2}" -L cpu -LE "e2e|default_model|deploy" \
  -E "^dummy_load_format_" "$@"
