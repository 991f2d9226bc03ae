#!/usr/bin/env bash
# Configures and builds strata (Release + debug info) into build/ with Ninja and ccache.
# Usage: scripts/build.sh [extra cmake args]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${STRATA_BUILD_DIR:-$root/build}
jobs=${STRATA_JOBS:-$(nproc)}
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=${STRATA_BUILD_TYPE:-RelWithDebInfo} "$@"
ninja -C "$build_dir" -j "$jobs"
