#!/usr/bin/env bash
# Installs every system package strata needs to build and test (Debian 12). Idempotent.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git curl
  libopenblas-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsentencepiece-dev libgtest-dev libgmock-dev libpcre2-dev libutf8proc-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev libboost-system-dev
  python3 python3-jinja2 python3-numpy python3-grpcio python3-yaml
  # scripts/test_fuzz.sh: clang 14 and its libFuzzer and sanitizer runtimes
  clang libclang-rt-14-dev

)
# Node.js (for the OpenAI SDK end-to-end tests): some images ship it outside Debian's packages.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "install_deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install_deps: all packages present"
fi
