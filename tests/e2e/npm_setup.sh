#!/usr/bin/env bash
# Installs the official OpenAI Node SDK (openai@4) into $STRATA_E2E_WORK/node for the SDK
# end-to-end test. Skips (77) where node/npm or the npm registry are unavailable.
set -uo pipefail
dir=${STRATA_E2E_WORK:?}/node
command -v node >/dev/null && command -v npm >/dev/null || { echo "SKIP: node/npm not installed"; exit 77; }
if [ -f "$dir/node_modules/openai/package.json" ]; then
  echo "openai SDK already installed: $(node -p "require('$dir/node_modules/openai/package.json').version")"
  exit 0
fi
mkdir -p "$dir"
[ -f "$dir/package.json" ] || echo '{"name": "strata-e2e", "private": true}' > "$dir/package.json"
if ! (cd "$dir" && timeout 300 npm install --no-audit --no-fund --loglevel=error openai@4); then
  echo "SKIP: npm install openai@4 failed (no registry access?)"
  exit 77
fi
echo "installed openai SDK $(node -p "require('$dir/node_modules/openai/package.json').version")"
