#!/usr/bin/env bash
# Installs dependencies, builds strata and runs every CPU test (ctest). GPU tests skip
# themselves where no GPU is present. Then builds the unit tests with ASan+UBSan into
# build-asan/ and runs them (scripts/test_sanitizers.sh); STRATA_SKIP_SANITIZERS=1 skips that.
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
