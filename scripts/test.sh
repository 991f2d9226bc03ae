#!/usr/bin/env bash
# Installs dependencies, builds strata and runs every CPU test (ctest). GPU tests skip
# themselves where no GPU is present. Then builds the unit tests with ASan+UBSan into
# build-asan/ and runs them (scripts/test_sanitizers.sh); STRATA_SKIP_SANITIZERS=1 skips that.
# Then fuzzes the parsers with libFuzzer in build-fuzz/ (scripts/test_fuzz.sh;
# STRATA_SKIP_FUZZ=1 skips it) and runs the threaded tests and the HTTP end-to-end tests under
# ThreadSanitizer in build-tsan/ (scripts/test_tsan.sh; STRATA_SKIP_TSAN=1 skips it).
# Extra arguments go to the first ctest run only.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
STRATA_BUILD_DIR=${STRATA_BUILD_DIR:-$root/build} "$root/scripts/build.sh" -DSTRATA_WERROR=ON
cd "${STRATA_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900 -j "${STRATA_TEST_JOBS:-2}" "$@"
if [ "${STRATA_SKIP_SANITIZERS:-0}" != 1 ]; then
  "$root/scripts/test_sanitizers.sh"
fi
if [ "${STRATA_SKIP_FUZZ:-0}" != 1 ]; then
  "$root/scripts/test_fuzz.sh"
fi
if [ "${STRATA_SKIP_TSAN:-0}" != 1 ]; then
  "$root/scripts/test_tsan.sh"
fi
