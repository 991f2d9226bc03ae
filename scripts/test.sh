#!/usr/bin/env bash
# Installs dependencies, builds strata and runs every CPU test (ctest). GPU tests skip
# themselves where no GPU is present.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
STRATA_BUILD_DIR=${STRATA_BUILD_DIR:-$root/build} "$root/scripts/build.sh" -DSTRATA_WERROR=ON
cd "${STRATA_BUILD_DIR:-$root/build}"
ctest --output-on-failure --timeout 900 -j "${STRATA_TEST_JOBS:-2}" "$@"
