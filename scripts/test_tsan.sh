#!/usr/bin/env bash
# Builds with ThreadSanitizer (gcc, CPU only) into build-tsan/ what runs on several threads: the
# engine tests (the engine loop thread and its callers: strata_engine_tests), the model tests (the
# threaded dummy-weight fill: strata_model_tests) and the strata binary, then runs those tests and
# the HTTP end-to-end tests against the TSan binary (200 concurrent streams, disconnects, a full
# queue, shutdown while streaming, malformed requests: the io threads and the engine loop). Any
# TSan report, from a test or from the server, fails the run. The gRPC test is left out: Debian's
# gRPC is not built with TSan, and its completion queues hand calls between threads in ways TSan
# cannot see, so every call would report races inside gRPC's own headers.
# Usage: scripts/test_tsan.sh [extra ctest args]
# Env: STRATA_TSAN_BUILD_DIR (default build-tsan/), STRATA_JOBS, STRATA_TEST_JOBS.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${STRATA_TSAN_BUILD_DIR:-$root/build-tsan}
jobs=${STRATA_JOBS:-$(nproc)}
# Debug keeps assert() on; -O1 keeps the soak and golden tests fast enough under TSan. STRATA_TSAN
# (CMakeLists.txt) holds the flags.
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
  -DSTRATA_ENABLE_CUDA=OFF -DSTRATA_WERROR=ON -DSTRATA_TSAN=ON \
  -DCMAKE_C_FLAGS="-O1" -DCMAKE_CXX_FLAGS="-O1" >/dev/null

# Every report goes to a file under tsan-logs/ (the server's stderr is not the test's), and the
# folder must stay empty. TSan cannot see the synchronization inside libgomp and OpenBLAS, which
# are not built with it, so their worker pools would report races that are not there: the CPU
# kernels run on the calling thread here (OMP_NUM_THREADS=1) and are built without TSan
# (CMakeLists.txt); their threading is not what this pass checks. Third-party suppressions only:
# tests/sanitizers/tsan.supp.
logs=$build_dir/tsan-logs
rm -rf "$logs"
mkdir -p "$logs"
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$logs/tsan:suppressions=$root/tests/sanitizers/tsan.supp"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

targets=(strata_engine_tests strata_model_tests strata)
echo "test_tsan: building ${targets[*]}"
ninja -C "$build_dir" -j "$jobs" "${targets[@]}"
echo "test_tsan: built in ${SECONDS}s"

cd "$build_dir"
status=0
ctest --output-on-failure --timeout 900 -j "${STRATA_TEST_JOBS:-2}" -L "^(engine|model)$" "$@" || status=$?
ctest --output-on-failure --timeout 900 -j "${STRATA_TEST_JOBS:-2}" \
  -R "^e2e_(concurrent_streams|disconnects|queue_limit|shutdown|fuzz)$" "$@" || status=$?

echo "test_tsan: done in ${SECONDS}s"
reports=("$logs"/tsan*)
if [ -e "${reports[0]}" ]; then
  echo "test_tsan: ThreadSanitizer reports (${#reports[@]} files in $logs):" >&2
  cat "${reports[@]}" >&2
  exit 1
fi
exit "$status"
