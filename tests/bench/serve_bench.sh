#!/usr/bin/env bash
# Serving benchmark on a GPU machine: starts `strata serve` with the given flags, waits until it
# is ready, checks that greedy chat is deterministic (two identical requests, same text), runs
# scripts/loadtest.py once per concurrency, then stops the server and checks it exited cleanly.
#
#   tests/bench/serve_bench.sh STRATA_BINARY LOG_DIR NAME "CONCURRENCIES" "LOADTEST ARGS" -- SERVE FLAGS...
#
# Writes LOG_DIR/NAME.server.log, NAME.chat.json, NAME.c<N>.json (loadtest --output-json) and
# NAME.c<N>.log. Exit status nonzero if the server did not come up, a check failed, or a
# load test failed.
set -uo pipefail

strata=${1:?usage: serve_bench.sh STRATA LOG_DIR NAME CONCURRENCIES LOADTEST_ARGS -- SERVE_FLAGS...}
logs=$2
name=$3
concurrencies=$4
loadtest_args=$5
shift 5
[[ ${1:-} == -- ]] && shift
port=$((18000 + RANDOM % 1000))
here=$(cd "$(dirname "$0")/../.." && pwd)

"$strata" serve --port "$port" --grpc-port -1 "$@" >"$logs/$name.server.log" 2>&1 &
server=$!
stop() {
  kill -INT "$server" 2>/dev/null
  wait "$server"
}
ready=0
for _ in $(seq 1 600); do
  if ! kill -0 "$server" 2>/dev/null; then break; fi
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/ready', timeout=2)" \
    2>/dev/null; then
    ready=1
    break
  fi
  sleep 1
done
if [[ $ready != 1 ]]; then
  echo "$name: the server did not become ready; its log:"
  tail -20 "$logs/$name.server.log"
  stop
  exit 1
fi

status=0
# Greedy chat twice: the same text both times, and not empty.
python3 - "$port" "$logs/$name.chat.json" <<'EOF' || status=1
import json, sys, urllib.request
port, out = sys.argv[1], sys.argv[2]
def chat():
    body = {"messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 48, "temperature": 0, "seed": 7}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    return json.load(urllib.request.urlopen(req, timeout=120))
a, b = chat(), chat()
ta, tb = a["choices"][0]["message"]["content"], b["choices"][0]["message"]["content"]
json.dump({"first": a, "second": b, "deterministic": ta == tb}, open(out, "w"), indent=1)
print(f"chat (greedy): {ta!r}")
print(f"deterministic: {ta == tb}, completion tokens {a['usage']['completion_tokens']}")
sys.exit(0 if ta == tb and a["usage"]["completion_tokens"] > 0 else 1)
EOF

for c in $concurrencies; do
  # A seed per concurrency: each run's prompts are new to the server, so no run is served from
  # the prefix cache an earlier one filled.
  # shellcheck disable=SC2086  # loadtest_args is a list of flags
  python3 "$here/scripts/loadtest.py" --base-url "http://127.0.0.1:$port" --concurrency "$c" --seed "$c" \
    --output-json "$logs/$name.c$c.json" $loadtest_args >"$logs/$name.c$c.log" 2>&1 || status=1
  echo "--- $name, concurrency $c"
  tail -25 "$logs/$name.c$c.log"
done

stop
rc=$?
if [[ $rc -ne 0 && $rc -ne 130 ]]; then
  echo "$name: the server exited with status $rc"
  status=1
fi
if grep -Ei "cuda error|illegal|internal error" "$logs/$name.server.log"; then status=1; fi
exit $status
