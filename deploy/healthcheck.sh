#!/usr/bin/env bash
# Container health check of `strata serve`: GET /health on the loopback, exit 0 on HTTP 200.
# Uses bash's /dev/tcp because the CUDA runtime image has no curl or wget.
# Usage: strata-healthcheck [PORT]   (default: $STRATA_PORT, else 8000)
set -uo pipefail
port=${1:-${STRATA_PORT:-8000}}
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3 || exit 1
IFS= read -r -t 5 status_line <&3 || exit 1
exec 3<&-
[[ $status_line == "HTTP/1."?" 200"* ]]
