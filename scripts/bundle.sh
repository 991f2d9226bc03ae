#!/usr/bin/env bash
# Copies strata binaries plus the shared libraries they need that a bare CUDA machine lacks
# (gRPC, protobuf, abseil, spdlog, fmt, sentencepiece, BLAS, ...) into one folder:
#   DEST/bin/<binaries>   DEST/lib/<libraries>
# Run them with LD_LIBRARY_PATH=DEST/lib. glibc, libstdc++/libgcc and the CUDA driver and
# libraries (cudart, cuBLAS, NCCL) are left to the target machine.
# Usage: scripts/bundle.sh DEST BINARY...
set -euo pipefail
dest=$1
shift
mkdir -p "$dest/bin" "$dest/lib"
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|librt\.|libpthread\.|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libnccl|libnvidia|libcudnn)'
for binary in "$@"; do
  cp -f "$binary" "$dest/bin/"
  ldd "$binary" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    if [[ ! $name =~ $skip ]]; then
      cp -fL "$path" "$dest/lib/$name"
    fi
  done
done
du -sh "$dest"
