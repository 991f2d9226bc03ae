#!/usr/bin/env bash
# Installs dependencies, builds strata, and serves the embedded default model (or the
# checkpoint given with --model) on http://127.0.0.1:8000. Extra flags go to `strata serve`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh"
exec "${STRATA_BUILD_DIR:-$root/build}/bin/strata" serve "$@"
