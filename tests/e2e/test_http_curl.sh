#!/usr/bin/env bash
# curl against a running `strata serve --api-key e2e-secret --max-body-bytes 65536` (started by
# run_with_server.py): status codes, OpenAI error shapes, auth, routing, limits, keep-alive, SSE.
set -uo pipefail
command -v curl >/dev/null || { echo "SKIP: curl not installed"; exit 77; }
url=${STRATA_URL:?}
model=${STRATA_MODEL_NAME:?}
key=e2e-secret
auth=(-H "Authorization: Bearer $key" -H "Content-Type: application/json")
json=(-H "Content-Type: application/json")
failures=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# call NAME EXPECTED_STATUS curl-args... : runs curl, checks the status, leaves the body in $tmp/body.
call() {
  local name=$1 expected=$2
  shift 2
  local status
  status=$(curl -sS -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' "$@")
  if [ "$status" != "$expected" ]; then
    fail "$name: status $status, expected $expected; body: $(head -c 400 "$tmp/body")"
    return 1
  fi
  echo "ok: $name ($status)"
}

# json_check NAME PYTHON_EXPR : evaluates the expression with j = the parsed body.
json_check() {
  local name=$1 expr=$2
  if ! python3 - "$tmp/body" "$expr" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
ok = eval(sys.argv[2])
sys.exit(0 if ok else 1)
EOF
  then
    fail "$name: check '$expr' failed on $(head -c 600 "$tmp/body")"
  fi
}

# An OpenAI error object: {"error": {"message": str, "type": str, "param", "code"}}.
is_error='set(j) == {"error"} and isinstance(j["error"]["message"], str) and j["error"]["message"] and isinstance(j["error"]["type"], str) and "param" in j["error"] and "code" in j["error"]'

# ---- open routes ----
call health 200 "$url/health"
call ready 200 "$url/ready"
call metrics 200 "$url/metrics" && grep -q '^strata:num_requests_running' "$tmp/body" || fail "metrics: no strata:num_requests_running"
grep -qi '^content-type: text/plain' "$tmp/headers" || fail "metrics: content-type is not text/plain"

# ---- auth ----
call "models without key" 401 "$url/v1/models" && json_check "401 shape" "$is_error and j['error']['code'] == 'invalid_api_key'"
grep -qi '^www-authenticate: Bearer' "$tmp/headers" || fail "401 without WWW-Authenticate"
call "models with a wrong key" 401 -H "Authorization: Bearer e2e-secreT" "$url/v1/models"
call "models with a longer key" 401 -H "Authorization: Bearer ${key}x" "$url/v1/models"
call "models with a non-bearer header" 401 -H "Authorization: Basic $key" "$url/v1/models"
call "completions without key" 401 -X POST -d '{"prompt":"hi"}' "$url/v1/completions"
call "models" 200 "${auth[@]}" "$url/v1/models" &&
  json_check "models list" "j['object'] == 'list' and j['data'][0]['id'] == '$model' and j['data'][0]['object'] == 'model'"
call "model card" 200 "${auth[@]}" "$url/v1/models/$model" && json_check "model card" "j['id'] == '$model'"
call "unknown model card" 404 "${auth[@]}" "$url/v1/models/nope" && json_check "404 model shape" "$is_error and j['error']['code'] == 'model_not_found'"

# ---- routing ----
call "unknown route" 404 "${auth[@]}" "$url/v1/nope" && json_check "404 shape" "$is_error"
call "unknown top-level route" 404 "$url/nope"
call "wrong method" 405 "${auth[@]}" "$url/v1/completions" && json_check "405 shape" "$is_error"
grep -qi '^allow: POST' "$tmp/headers" || fail "405 without Allow: POST"
call "wrong method on health" 405 -X POST "$url/health"

# ---- completions ----
call "completion" 200 "${auth[@]}" -d "{\"model\":\"$model\",\"prompt\":\"Hello world\",\"max_tokens\":5,\"temperature\":0}" "$url/v1/completions" &&
  json_check "completion shape" "j['object'] == 'text_completion' and j['model'] == '$model' and len(j['choices']) == 1 and isinstance(j['choices'][0]['text'], str) and j['choices'][0]['finish_reason'] in ('stop', 'length') and j['usage']['total_tokens'] == j['usage']['prompt_tokens'] + j['usage']['completion_tokens'] and 1 <= j['usage']['completion_tokens'] <= 5"
call "completion without model field" 200 "${auth[@]}" -d '{"prompt":[1,2,3],"max_tokens":2}' "$url/v1/completions"
call "completion, unknown fields ignored" 200 "${auth[@]}" -d '{"prompt":"x","max_tokens":2,"frobnicate":{"a":[1]},"user":"u1"}' "$url/v1/completions"
call "completion, unknown model" 404 "${auth[@]}" -d '{"model":"gpt-nope","prompt":"x"}' "$url/v1/completions" &&
  json_check "unknown model shape" "$is_error and j['error']['code'] == 'model_not_found' and j['error']['param'] == 'model'"
call "completion, echo" 200 "${auth[@]}" -d '{"prompt":"Hello","max_tokens":3,"echo":true,"temperature":0}' "$url/v1/completions" &&
  json_check "echo" "j['choices'][0]['text'].startswith('Hello')"
call "completion, logprobs" 200 "${auth[@]}" -d '{"prompt":"Hello","max_tokens":3,"logprobs":2,"temperature":0}' "$url/v1/completions" &&
  json_check "legacy logprobs" "(lambda l: len(l['tokens']) == len(l['token_logprobs']) == len(l['top_logprobs']) == len(l['text_offset']) >= 1 and all(isinstance(x, float) and x <= 0 for x in l['token_logprobs']) and all(1 <= len(t) <= 3 for t in l['top_logprobs']))(j['choices'][0]['logprobs'])"
call "completion, n=3 x 2 prompts" 200 "${auth[@]}" -d '{"prompt":["a b","c d"],"max_tokens":2,"n":3,"seed":7}' "$url/v1/completions" &&
  json_check "n x prompts" "sorted(c['index'] for c in j['choices']) == list(range(6))"

# ---- chat ----
call "chat" 200 "${auth[@]}" -d '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":4,"temperature":0}' "$url/v1/chat/completions" &&
  json_check "chat shape" "j['object'] == 'chat.completion' and j['choices'][0]['message']['role'] == 'assistant' and isinstance(j['choices'][0]['message']['content'], str) and j['usage']['completion_tokens'] >= 1"
call "chat, image part" 400 "${auth[@]}" -d '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}' "$url/v1/chat/completions" &&
  json_check "image part shape" "$is_error and j['error']['param'] == 'messages'"
call "chat, bad role" 400 "${auth[@]}" -d '{"messages":[{"role":"wizard","content":"x"}]}' "$url/v1/chat/completions"
call "chat, no messages" 400 "${auth[@]}" -d '{"messages":[]}' "$url/v1/chat/completions"
call "chat, top_logprobs without logprobs" 400 "${auth[@]}" -d '{"messages":[{"role":"user","content":"x"}],"top_logprobs":2}' "$url/v1/chat/completions" &&
  json_check "top_logprobs param" "j['error']['param'] == 'top_logprobs'"

# ---- invalid parameters: 400 naming the parameter ----
bad() {  # bad PARAM BODY
  call "invalid $1" 400 "${auth[@]}" -d "$2" "$url/v1/completions" && json_check "invalid $1 shape" "$is_error and j['error']['param'] == '$1'"
}
bad temperature '{"prompt":"x","temperature":"hot"}'
bad temperature '{"prompt":"x","temperature":-1}'
bad top_p '{"prompt":"x","top_p":1.5}'
bad top_k '{"prompt":"x","top_k":-5}'
bad max_tokens '{"prompt":"x","max_tokens":-1}'
bad max_tokens '{"prompt":"x","max_tokens":1e30}'
bad max_tokens '{"prompt":"x","max_tokens":99999999999999999999}'
bad n '{"prompt":"x","n":0}'
bad presence_penalty '{"prompt":"x","presence_penalty":3}'
bad logit_bias '{"prompt":"x","logit_bias":{"abc":1}}'
bad logit_bias '{"prompt":"x","logit_bias":{"1":500}}'
bad stop '{"prompt":"x","stop":5}'
bad prompt '{"prompt":{"a":1}}'
bad prompt '{"prompt":[]}'
bad prompt '{"prompt":[999999999]}'
bad prompt '{"max_tokens":3}'
bad stream_options '{"prompt":"x","stream_options":{"include_usage":true}}'
bad logprobs '{"prompt":"x","logprobs":50}'
bad seed '{"prompt":"x","seed":"s"}'
bad response_format '{"prompt":"x","response_format":{"type":"json_object"}}'
bad echo '{"prompt":"x","echo":"x"}'

# ---- one validation path: the same field, the same check and wording on both endpoints ----
worded() {  # worded ROUTE NAME PARAM BODY MESSAGE_FRAGMENT : a 400 naming PARAM, its message holding the fragment
  call "$1: $2" 400 "${auth[@]}" -d "$4" "$url/v1/$1" &&
    json_check "$1: $2 shape" "$is_error and j['error']['param'] == '$3' and '$5' in j['error']['message']"
}
chat='{"messages":[{"role":"user","content":"x"}]'
worded chat/completions "echo not a boolean" echo "$chat,\"echo\":\"x\"}" "echo must be a boolean"
worded chat/completions "response_format" response_format "$chat,\"response_format\":{\"type\":\"json_object\"}}" "response_format"
worded chat/completions "max_tokens 0 names max_tokens" max_tokens "$chat,\"max_tokens\":0}" "max_tokens must be in [1, 2147483647], got 0"
worded chat/completions "max_tokens -1" max_tokens "$chat,\"max_tokens\":-1}" "max_tokens must be in [1, 2147483647], got -1"
worded chat/completions "max_completion_tokens 0" max_completion_tokens "$chat,\"max_completion_tokens\":0}" "max_completion_tokens must be in [1, "
worded completions "max_tokens 0" max_tokens '{"prompt":"x","max_tokens":0}' "max_tokens must be in [1, 2147483647], got 0"
worded completions "max_tokens -1" max_tokens '{"prompt":"x","max_tokens":-1}' "max_tokens must be in [1, 2147483647], got -1"
worded completions "seed 2^70 is a range error" seed '{"prompt":"x","seed":1180591620717411303424}' "seed must be in ["

# ---- Content-Type: JSON or nothing ----
call "form-encoded body (curl -d without a header)" 415 -H "Authorization: Bearer $key" -d '{"prompt":"x","max_tokens":1}' "$url/v1/completions" &&
  json_check "415 shape" "$is_error and j['error']['code'] == 'unsupported_media_type' and 'application/json' in j['error']['message']"
call "text/plain body" 415 -H "Authorization: Bearer $key" -H "Content-Type: text/plain" -d '{"prompt":"x"}' "$url/v1/chat/completions"
call "tokenize, text/plain" 415 -H "Content-Type: text/plain" -d '{"prompt":"x"}' "$url/tokenize"
call "JSON with a charset" 200 -H "Authorization: Bearer $key" -H "Content-Type: Application/JSON; charset=utf-8" -d '{"prompt":"x","max_tokens":1}' "$url/v1/completions"
bad max_tokens '{"prompt":"x","max_tokens":100000}'
grep -q "maximum context length is" "$tmp/body" || fail "context-length error does not give the numbers: $(cat "$tmp/body")"

# ---- malformed bodies and limits ----
call "bad JSON" 400 "${auth[@]}" -d '{"prompt": "x",' "$url/v1/completions" && json_check "bad JSON shape" "$is_error"
call "JSON array body" 400 "${auth[@]}" -d '[1,2]' "$url/v1/completions" && json_check "array body shape" "$is_error"
call "empty body" 400 "${auth[@]}" -X POST "$url/v1/completions"
head -c 70000 /dev/zero | tr '\0' 'a' > "$tmp/big"
call "body over --max-body-bytes" 413 "${auth[@]}" --data-binary @"$tmp/big" "$url/v1/completions" && json_check "413 shape" "$is_error"
call "Expect: 100-continue" 200 "${auth[@]}" -H "Expect: 100-continue" -d "{\"prompt\":\"x\",\"max_tokens\":1,\"filler\":\"$(head -c 3000 /dev/zero | tr '\0' 'b')\"}" "$url/v1/completions"

# ---- keep-alive: two requests, one connection ----
curl -sv -o /dev/null -o /dev/null "$url/health" "$url/ready" 2> "$tmp/verbose" >/dev/null
grep -qi "re-using existing connection" "$tmp/verbose" || fail "keep-alive: the connection was not reused"

# ---- streaming ----
curl -sS -N "${auth[@]}" -d '{"prompt":"Hello","max_tokens":4,"stream":true,"stream_options":{"include_usage":true}}' "$url/v1/completions" > "$tmp/sse"
python3 - "$tmp/sse" <<'EOF' || fail "completion stream: $(head -c 800 "$tmp/sse")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n"), raw[-100:]
events = [e for e in raw.split("\n\n") if e]
assert all(e.startswith("data: ") for e in events)
chunks = [json.loads(e[6:]) for e in events[:-1]]
assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 1
assert chunks[-2]["choices"][0]["finish_reason"] in ("stop", "length")
assert all(c["object"] == "text_completion" for c in chunks)
EOF
echo "ok: completion stream"
curl -sS -N "${auth[@]}" -d '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":4,"stream":true}' "$url/v1/chat/completions" > "$tmp/sse"
python3 - "$tmp/sse" <<'EOF' || fail "chat stream: $(head -c 800 "$tmp/sse")"
import json, sys
raw = open(sys.argv[1]).read()
assert raw.endswith("data: [DONE]\n\n"), raw[-100:]
chunks = [json.loads(e[6:]) for e in raw.split("\n\n") if e and e != "data: [DONE]"]
assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length") and chunks[-1]["choices"][0]["delta"] == {}
assert all(c["object"] == "chat.completion.chunk" for c in chunks)
EOF
echo "ok: chat stream"

# ---- tokenize / detokenize (vLLM shapes, open like /health) ----
call tokenize 200 "${json[@]}" -d '{"prompt":"Hello world"}' "$url/tokenize" &&
  json_check "tokenize shape" "j['count'] == len(j['tokens']) > 0 and j['max_model_len'] > 0"
ids=$(python3 -c "import json; print(json.dumps(json.load(open('$tmp/body'))['tokens']))")
call detokenize 200 "${json[@]}" -d "{\"tokens\":$ids}" "$url/detokenize" && json_check "detokenize round trip" "j['prompt'] == 'Hello world'"
call "tokenize chat" 200 "${json[@]}" -d '{"messages":[{"role":"user","content":"Hi"}]}' "$url/tokenize" && json_check "tokenize chat" "j['count'] > 2"
call "detokenize bad ids" 400 "${json[@]}" -d '{"tokens":[-1]}' "$url/detokenize" && json_check "detokenize 400 shape" "$is_error"

# The server is still healthy after all of that.
call "health at the end" 200 "$url/health"

if [ "$failures" -ne 0 ]; then
  echo "$failures check(s) failed"
  exit 1
fi
echo "all curl checks passed"
